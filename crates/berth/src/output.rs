//! Human tables and `--output json`.

use serde::Serialize;

use crate::cli::Output;

/// Prints rows under headers, columns padded to their widest cell.
pub fn table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  "));
            }
        }
        println!("{}", out.trim_end());
    };
    line(headers.iter().map(|h| h.to_string()).collect());
    for row in rows {
        line(row.clone());
    }
}

/// The answer as JSON for `--output json`, else as `human` prints it.
pub fn print<T: Serialize>(output: Output, value: &T, human: impl FnOnce(&T)) {
    match output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_default()
        ),
        Output::Table => human(value),
    }
}

/// An optional text, or "-".
pub fn or_dash(v: Option<&str>) -> String {
    v.unwrap_or("-").to_owned()
}

/// A list, comma-joined, or "-" when empty.
pub fn list(items: &[String]) -> String {
    match items {
        [] => "-".into(),
        items => items.join(","),
    }
}
