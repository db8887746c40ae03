//! JSON as vqm writes it: serde_json, compact, with numbers in Rust's
//! shortest round-trip form without exponent (`60`, not `60.0`; `-0` as
//! `0`) and `null` for a number that is not finite, so every record reads
//! the same way on every run.

use std::io;

use serde::Serialize;

use crate::error::Error;

/// serde_json's compact output with vqm's numbers.
#[derive(Clone, Copy, Default)]
pub struct Numbers;

impl serde_json::ser::Formatter for Numbers {
    fn write_f64<W: ?Sized + io::Write>(&mut self, w: &mut W, v: f64) -> io::Result<()> {
        // non-finite values never get here: serde_json writes them as null
        if v == 0.0 {
            w.write_all(b"0")
        } else {
            write!(w, "{v}")
        }
    }

    fn write_f32<W: ?Sized + io::Write>(&mut self, w: &mut W, v: f32) -> io::Result<()> {
        self.write_f64(w, v as f64)
    }

    fn write_char_escape<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        escape: serde_json::ser::CharEscape,
    ) -> io::Result<()> {
        use serde_json::ser::CharEscape;
        // every control character but \n, \r and \t as \u00xx
        match escape {
            CharEscape::Backspace => w.write_all(b"\\u0008"),
            CharEscape::FormFeed => w.write_all(b"\\u000c"),
            other => serde_json::ser::Formatter::write_char_escape(
                &mut serde_json::ser::CompactFormatter,
                w,
                other,
            ),
        }
    }
}

/// Serialises `value` as one compact JSON line (without the newline).
pub fn line<T: Serialize + ?Sized>(value: &T) -> Result<String, Error> {
    let mut buf = Vec::with_capacity(256);
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, Numbers);
    value
        .serialize(&mut ser)
        .map_err(|e| Error::Internal(format!("a record could not be serialised: {e}")))?;
    String::from_utf8(buf).map_err(|e| Error::Internal(format!("a record is not UTF-8: {e}")))
}

/// Appends `v` as vqm writes numbers (CSV cells use the same form), or
/// `null` if it is not finite.
pub fn push_num(buf: &mut String, v: f64) {
    if !v.is_finite() {
        buf.push_str("null");
    } else if v == 0.0 {
        buf.push('0');
    } else {
        use std::fmt::Write;
        let _infallible = write!(buf, "{v}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Sample {
        #[serde(rename = "type")]
        kind: &'static str,
        frame: u64,
        a: f64,
        b: f64,
        c: f64,
        d: f64,
        e: f64,
        f: f64,
        q: &'static str,
        n: Option<f64>,
    }

    #[test]
    fn compact_ordered_and_finite() {
        let s = line(&Sample {
            kind: "frame",
            frame: 3,
            a: 1.5,
            b: f64::NAN,
            c: f64::INFINITY,
            d: 60.0,
            e: -0.0,
            f: 1e-7,
            q: "a\"b\n\u{8}\u{c}\u{1}",
            n: None,
        })
        .unwrap();
        assert_eq!(
            s,
            r#"{"type":"frame","frame":3,"a":1.5,"b":null,"c":null,"d":60,"e":0,"f":0.0000001,"q":"a\"b\n\u0008\u000c\u0001","n":null}"#
        );
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["d"], 60);
        let mut cell = String::new();
        for x in [60.0, -0.0, f64::NAN, 0.25] {
            push_num(&mut cell, x);
            cell.push(',');
        }
        assert_eq!(cell, "60,0,null,0.25,");
    }
}
