//! `Range: bytes=…` on blob GET and HEAD, as RFC 9110 §14 reads it for one resource of known
//! size: one range (first-last, first-, or a suffix -n) is served as 206, an invalid or
//! unsatisfiable one is refused with 416, and what the registry does not do (other units,
//! several ranges) is ignored, so the whole blob is served.

/// What to answer for a blob of `size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// No range asked (or one ignored): 200 with the whole blob.
    Whole,
    /// 206 with bytes `first..=last`.
    Part { first: u64, last: u64 },
    /// 416 with `Content-Range: bytes */size`.
    Unsatisfiable,
}

/// Reads a `Range` header's value against a blob of `size` bytes.
pub fn byte_range(header: Option<&str>, size: u64) -> ByteRange {
    let Some(spec) = header.map(str::trim).and_then(|h| h.strip_prefix("bytes=")) else {
        return ByteRange::Whole;
    };
    if spec.contains(',') {
        return ByteRange::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return ByteRange::Unsatisfiable;
    };
    match (number(first), number(last)) {
        (Some(first), last) if first < size && last.is_none_or(|l| l >= first) => {
            let last = last.map_or(size - 1, |l| l.min(size - 1));
            ByteRange::Part { first, last }
        }
        (None, Some(suffix)) if first.is_empty() && suffix > 0 && size > 0 => ByteRange::Part {
            first: size.saturating_sub(suffix),
            last: size - 1,
        },
        _ => ByteRange::Unsatisfiable,
    }
}

/// A decimal without sign or spaces; `None` for an empty or malformed part.
fn number(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ByteRange::*;

    #[test]
    fn every_form_of_one_range_against_a_2048_byte_blob() {
        let cases: &[(&str, Option<&str>, ByteRange)] = &[
            ("no header", None, Whole),
            (
                "first-last",
                Some("bytes=10-19"),
                Part {
                    first: 10,
                    last: 19,
                },
            ),
            (
                "first-",
                Some("bytes=2000-"),
                Part {
                    first: 2000,
                    last: 2047,
                },
            ),
            (
                "suffix",
                Some("bytes=-500"),
                Part {
                    first: 1548,
                    last: 2047,
                },
            ),
            (
                "suffix larger than the blob",
                Some("bytes=-5000"),
                Part {
                    first: 0,
                    last: 2047,
                },
            ),
            (
                "last past the end is clamped",
                Some("bytes=2000-9999"),
                Part {
                    first: 2000,
                    last: 2047,
                },
            ),
            ("one byte", Some("bytes=0-0"), Part { first: 0, last: 0 }),
            ("first at the size", Some("bytes=2048-"), Unsatisfiable),
            (
                "first past the size",
                Some("bytes=4096-5000"),
                Unsatisfiable,
            ),
            ("last before first", Some("bytes=500-0"), Unsatisfiable),
            ("not a number", Some("bytes=x"), Unsatisfiable),
            ("no dash", Some("bytes=500"), Unsatisfiable),
            ("empty suffix", Some("bytes=-0"), Unsatisfiable),
            ("nothing", Some("bytes=-"), Unsatisfiable),
            ("signed", Some("bytes=+1-2"), Unsatisfiable),
            ("several ranges are ignored", Some("bytes=0-1,5-6"), Whole),
            ("another unit is ignored", Some("items=0-1"), Whole),
        ];
        for (case, header, want) in cases {
            assert_eq!(byte_range(*header, 2048), *want, "{case}: {header:?}");
        }
    }

    #[test]
    fn an_empty_blob_satisfies_no_range() {
        assert_eq!(byte_range(Some("bytes=0-"), 0), Unsatisfiable);
        assert_eq!(byte_range(Some("bytes=-1"), 0), Unsatisfiable);
        assert_eq!(byte_range(None, 0), Whole);
    }
}
