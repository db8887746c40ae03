//! A small writer of compact JSON objects with keys in a fixed order, so
//! every record reads the same way on every run. Non-finite numbers are
//! written as `null`.

use std::fmt::Write;

/// Builds one JSON object into a string.
pub struct Obj<'a> {
    buf: &'a mut String,
    first: bool,
}

impl<'a> Obj<'a> {
    /// Starts an object at the end of `buf`.
    pub fn new(buf: &'a mut String) -> Self {
        buf.push('{');
        Obj { buf, first: true }
    }

    fn key(&mut self, k: &str) {
        if !self.first {
            self.buf.push(',');
        }
        self.first = false;
        push_str(self.buf, k);
        self.buf.push(':');
    }

    /// `"k":"v"`.
    pub fn str(&mut self, k: &str, v: &str) -> &mut Self {
        self.key(k);
        push_str(self.buf, v);
        self
    }

    /// `"k":v`, or `"k":null` when `v` is not finite.
    pub fn num(&mut self, k: &str, v: f64) -> &mut Self {
        self.key(k);
        push_num(self.buf, v);
        self
    }

    /// `"k":v` or `"k":null`.
    pub fn opt_num(&mut self, k: &str, v: Option<f64>) -> &mut Self {
        self.key(k);
        match v {
            Some(v) => push_num(self.buf, v),
            None => self.buf.push_str("null"),
        }
        self
    }

    /// `"k":"v"` or `"k":null`.
    pub fn opt_str(&mut self, k: &str, v: Option<&str>) -> &mut Self {
        self.key(k);
        match v {
            Some(v) => push_str(self.buf, v),
            None => self.buf.push_str("null"),
        }
        self
    }

    /// `"k":n` for an integer.
    pub fn int(&mut self, k: &str, v: u64) -> &mut Self {
        self.key(k);
        let _infallible = write!(self.buf, "{v}");
        self
    }

    /// `"k":<already serialised JSON>`.
    pub fn raw(&mut self, k: &str, json: &str) -> &mut Self {
        self.key(k);
        self.buf.push_str(json);
        self
    }

    /// `"k":{...}` built by `f`.
    pub fn obj(&mut self, k: &str, f: impl FnOnce(&mut Obj<'_>)) -> &mut Self {
        self.key(k);
        let mut inner = Obj::new(self.buf);
        f(&mut inner);
        inner.close();
        self
    }

    /// `"k":[...]` of strings.
    pub fn str_array<'s>(
        &mut self,
        k: &str,
        items: impl IntoIterator<Item = &'s str>,
    ) -> &mut Self {
        self.key(k);
        self.buf.push('[');
        for (i, s) in items.into_iter().enumerate() {
            if i > 0 {
                self.buf.push(',');
            }
            push_str(self.buf, s);
        }
        self.buf.push(']');
        self
    }

    /// Ends the object.
    pub fn close(self) {
        self.buf.push('}');
    }
}

/// Appends `v` as a JSON number, or `null` if it is not finite.
pub fn push_num(buf: &mut String, v: f64) {
    if v.is_finite() {
        // Rust's shortest round-trip formatting; `-0` is written as `0`.
        if v == 0.0 {
            buf.push('0');
        } else {
            let _infallible = write!(buf, "{v}");
        }
    } else {
        buf.push_str("null");
    }
}

/// Appends `s` as a JSON string literal.
pub fn push_str(buf: &mut String, s: &str) {
    buf.push('"');
    for c in s.chars() {
        match c {
            '"' => buf.push_str("\\\""),
            '\\' => buf.push_str("\\\\"),
            '\n' => buf.push_str("\\n"),
            '\r' => buf.push_str("\\r"),
            '\t' => buf.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _infallible = write!(buf, "\\u{:04x}", c as u32);
            }
            c => buf.push(c),
        }
    }
    buf.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_ordered_and_finite() {
        let mut s = String::new();
        let mut o = Obj::new(&mut s);
        o.str("type", "frame")
            .int("frame", 3)
            .num("a", 1.5)
            .num("b", f64::NAN)
            .num("c", f64::INFINITY)
            .num("d", 60.0)
            .str("q", "a\"b\n");
        o.close();
        assert_eq!(
            s,
            r#"{"type":"frame","frame":3,"a":1.5,"b":null,"c":null,"d":60,"q":"a\"b\n"}"#
        );
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["d"], 60);
    }
}
