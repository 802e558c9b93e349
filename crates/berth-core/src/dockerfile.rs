//! The base images a Dockerfile pulls: every `FROM` (multi-stage, `--platform=`, `AS name`), with
//! `ARG` defaults and build arguments substituted (`$V`, `${V}`, `${V:-default}`), line
//! continuations and comments handled, and references to earlier stages and `scratch` left out.

use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseImage {
    /// 1-based line of the `FROM`.
    pub line: usize,
    pub image: String,
    pub platform: Option<String>,
}

fn substitute(text: &str, vars: &HashMap<String, String>) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'{') {
            chars.next();
            let mut inner = String::new();
            for c in chars.by_ref() {
                if c == '}' {
                    break;
                }
                inner.push(c);
            }
            let (name, default) = match inner.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (inner.as_str(), None),
            };
            match (vars.get(name).filter(|v| !v.is_empty()), default) {
                (Some(v), _) => out.push_str(v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => {}
            }
        } else {
            let mut name = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_ascii_alphanumeric() || c == '_' {
                    name.push(c);
                    chars.next();
                } else {
                    break;
                }
            }
            if name.is_empty() {
                out.push('$');
            } else if let Some(v) = vars.get(&name) {
                out.push_str(v);
            }
        }
    }
    out
}

/// Logical instructions: (first line number, text) with continuations joined, comments dropped.
fn instructions(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.starts_with('#') || (line.is_empty() && current.is_none()) {
            continue;
        }
        let (body, continued) = match line.strip_suffix('\\') {
            Some(b) => (b.trim_end(), true),
            None => (line, false),
        };
        let entry = current.get_or_insert_with(|| (i + 1, String::new()));
        if !entry.1.is_empty() {
            entry.1.push(' ');
        }
        entry.1.push_str(body);
        if !continued {
            out.extend(current.take());
        }
    }
    out.extend(current);
    out
}

/// The images the Dockerfile's `FROM`s name, in order; `build_args` override `ARG` defaults.
pub fn base_images(text: &str, build_args: &HashMap<String, String>) -> Vec<BaseImage> {
    let mut vars: HashMap<String, String> = HashMap::new();
    let mut stages: Vec<String> = Vec::new();
    let mut out = Vec::new();
    let mut seen_from = false;
    for (line, instr) in instructions(text) {
        let mut words = instr.split_whitespace();
        let keyword = words.next().unwrap_or("").to_ascii_uppercase();
        let rest: Vec<&str> = words.collect();
        match keyword.as_str() {
            // Only ARGs before the first FROM are in scope for FROM lines.
            "ARG" if !seen_from => {
                for decl in rest {
                    let (name, default) = match decl.split_once('=') {
                        Some((n, d)) => (n, Some(d.trim_matches('"').to_owned())),
                        None => (decl, None),
                    };
                    let value = build_args
                        .get(name)
                        .cloned()
                        .or(default)
                        .unwrap_or_default();
                    vars.insert(name.to_owned(), value);
                }
            }
            "FROM" => {
                seen_from = true;
                let mut platform = None;
                let mut image = None;
                let mut alias = None;
                let mut iter = rest.iter();
                while let Some(word) = iter.next() {
                    if let Some(p) = word.strip_prefix("--platform=") {
                        platform = Some(substitute(p, &vars));
                    } else if word.starts_with("--") {
                        continue;
                    } else if word.eq_ignore_ascii_case("as") {
                        alias = iter.next().map(|a| a.to_ascii_lowercase());
                    } else if image.is_none() {
                        image = Some(substitute(word, &vars));
                    }
                }
                if let Some(image) = image {
                    let is_stage = stages.contains(&image.to_ascii_lowercase());
                    if !is_stage && image != "scratch" && !image.is_empty() {
                        out.push(BaseImage {
                            line,
                            image,
                            platform,
                        });
                    }
                }
                if let Some(a) = alias {
                    stages.push(a);
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_base_with_args_stages_and_platforms() {
        let text = r#"# syntax=docker/dockerfile:1
ARG REGISTRY=127.0.0.1:5080
ARG TAG
FROM --platform=$BUILDPLATFORM ${REGISTRY}/team/build:${TAG:-1.0} AS build
RUN make
FROM build AS test
FROM \
  $REGISTRY/team/runtime:2 as final
COPY --from=build /out /app
FROM scratch
"#;
        let images = base_images(text, &HashMap::new());
        assert_eq!(
            images,
            vec![
                BaseImage {
                    line: 4,
                    image: "127.0.0.1:5080/team/build:1.0".into(),
                    platform: Some(String::new()),
                },
                BaseImage {
                    line: 7,
                    image: "127.0.0.1:5080/team/runtime:2".into(),
                    platform: None,
                },
            ]
        );
        let args = HashMap::from([
            ("TAG".to_owned(), "3.1".to_owned()),
            ("REGISTRY".to_owned(), "reg.example".to_owned()),
        ]);
        let images = base_images(text, &args);
        assert_eq!(images[0].image, "reg.example/team/build:3.1");
    }
}
