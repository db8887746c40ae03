//! Credentials hidden wherever vqm shows an input's name: the records,
//! `/metrics`, the report, the CSV files, the batch's files and stderr.
//! The string given to FFmpeg is never touched; only what is shown.
//!
//! [`redact`] takes any text (a URL, or a message that quotes one) and
//! replaces with `***`:
//!
//! - the userinfo of every `scheme://user:password@host` URL, whole (a
//!   user name alone can be a token: `https://TOKEN@host`), so the URL
//!   reads `scheme://***@host`;
//! - the value of every `key=value` whose key names a secret (matched
//!   case-insensitively, percent-encoding decoded): a key containing
//!   `pass`, `pwd`, `token`, `secret`, `auth`, `sign`, `credential` or
//!   `cookie`, a key ending in `key`, and `sig`, `pw`, `jwt`, `hmac`,
//!   `conn`/`rtmp_conn` (RTMP connect data), `headers` (FFmpeg's HTTP
//!   request headers), Akamai's `hdnts`/`hdnea`/`hdntl`. That covers a
//!   URL's query and fragment (`?passphrase=…&token=…`, `;`-separated
//!   too), librtmp's space-separated options and an echoed
//!   `--ref-opt passphrase=…`;
//! - the credential after `Bearer ` or `Basic ` (an `Authorization`
//!   header quoted in a message).

use std::borrow::Cow;
use std::ops::Range;

/// What a hidden credential is shown as.
pub const MASK: &str = "***";

/// `text` with every credential it holds replaced by [`MASK`]; borrowed
/// unchanged when it holds none.
pub fn redact(text: &str) -> Cow<'_, str> {
    let users = userinfo(text);
    // a `key=` inside a userinfo is hidden with it
    let values = key_values(text)
        .into_iter()
        .filter(|v| !users.iter().any(|u| u.start <= v.start && v.start < u.end));
    let mut hide: Vec<Range<usize>> = values.chain(bearer(text)).collect();
    hide.extend(users);
    if hide.is_empty() {
        return Cow::Borrowed(text);
    }
    hide.sort_by_key(|r| r.start);
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for r in hide {
        if r.end <= at {
            continue;
        }
        if r.start >= at {
            out.push_str(&text[at..r.start]);
            out.push_str(MASK);
        }
        at = r.end;
    }
    out.push_str(&text[at..]);
    Cow::Owned(out)
}

/// Whether `c` ends a URL (or a value) inside a message: blanks, quotes,
/// angle brackets, control characters.
fn ends_url(c: char) -> bool {
    c.is_whitespace() || c.is_control() || matches!(c, '\'' | '"' | '`' | '<' | '>')
}

/// The userinfo of every URL in `text` (after `://`, before the `@` that
/// ends it).
fn userinfo(text: &str) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = text[from..].find("://") {
        let start = from + i + 3;
        from = start;
        let rest = &text[start..];
        let url = &rest[..rest.find(ends_url).unwrap_or(rest.len())];
        // FFmpeg's rule: the last `@` before the path, query or fragment
        let authority = &url[..url.find(['/', '?', '#']).unwrap_or(url.len())];
        let at = authority.rfind('@').or_else(|| {
            // a password holding a `/` (FFmpeg would read it as the path):
            // `user:pa/ss@host`, told from `host:8080/path@x` by what
            // follows the colon
            let before_query = &url[..url.find(['?', '#']).unwrap_or(url.len())];
            let at = before_query.rfind('@')?;
            // an IPv6 host's colons are no user's
            let (_, after_colon) = authority
                .split_once(':')
                .filter(|_| !authority.starts_with('['))?;
            let port = !after_colon.is_empty() && after_colon.bytes().all(|b| b.is_ascii_digit());
            (!port).then_some(at)
        });
        if let Some(at) = at.filter(|&at| at > 0) {
            out.push(start..start + at);
        }
    }
    out
}

/// Whether a parameter named `key` holds a secret.
fn sensitive(key: &str) -> bool {
    let k = percent_decoded(key).to_ascii_lowercase();
    const PARTS: [&str; 8] = [
        "pass",
        "pwd",
        "token",
        "secret",
        "auth",
        "sign",
        "credential",
        "cookie",
    ];
    const NAMES: [&str; 10] = [
        "sig",
        "pw",
        "jwt",
        "hmac",
        "conn",
        "rtmp_conn",
        "headers",
        "hdnts",
        "hdnea",
        "hdntl",
    ];
    PARTS.iter().any(|p| k.contains(p)) || k.ends_with("key") || NAMES.contains(&k.as_str())
}

/// `s` with its `%XX` escapes decoded (an invalid escape stays as it is).
fn percent_decoded(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The values of the `key=value` pairs in `text` whose key is sensitive.
/// A key starts a word or follows `?`, `&`, `;`, `#` (a query or a
/// fragment), `(`, `[`, `{`, `,` or `:`; the value runs to `&`, a blank,
/// a quote or an angle bracket.
fn key_values(text: &str) -> Vec<Range<usize>> {
    let key_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '%');
    let mut out = Vec::new();
    for (eq, _) in text.match_indices('=') {
        let before = &text[..eq];
        let key_start = before
            .char_indices()
            .rev()
            .take_while(|&(_, c)| key_char(c))
            .last()
            .map_or(eq, |(i, _)| i);
        let key = &text[key_start..eq];
        let bounded = text[..key_start].chars().next_back().is_none_or(|c| {
            ends_url(c) || matches!(c, '?' | '&' | ';' | '#' | '(' | '[' | '{' | ',' | ':')
        });
        if key.is_empty() || !bounded || !sensitive(key) {
            continue;
        }
        let rest = &text[eq + 1..];
        let len = rest
            .find(|c: char| c == '&' || ends_url(c))
            .unwrap_or(rest.len());
        // vqm's own placeholder (`--ref-opt <KEY=VALUE>`) is no secret
        if len > 0 && &rest[..len] != "VALUE" {
            out.push(eq + 1..eq + 1 + len);
        }
    }
    out
}

/// The credentials of `Bearer X` and `Basic X` (an HTTP `Authorization`
/// header's value).
fn bearer(text: &str) -> Vec<Range<usize>> {
    let lower = text.to_ascii_lowercase();
    let mut out = Vec::new();
    for word in ["bearer ", "basic "] {
        for (i, _) in lower.match_indices(word) {
            let starts_word = lower[..i]
                .chars()
                .next_back()
                .is_none_or(|c| !c.is_ascii_alphanumeric());
            let start = i + word.len();
            let rest = &text[start..];
            let skip = rest.len() - rest.trim_start_matches(' ').len();
            let rest = &rest[skip..];
            let len = rest.find(ends_url).unwrap_or(rest.len());
            if starts_word && len > 0 {
                out.push(start + skip..start + skip + len);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> String {
        redact(s).into_owned()
    }

    #[test]
    fn text_without_credentials_is_borrowed_unchanged() {
        for s in [
            "",
            "/data/clip.mp4",
            "udp://239.0.0.1:5000?pkt_size=1316&fifo_size=100000",
            "srt://host:9000?mode=listener&latency=200&pbkeylen=16",
            "rtmp://host/live/stream",
            "http://host:8080/path@x/y.ts",
            "https://cdn.example/a/b.m3u8?a=1&b=2#t=3",
            "vqm: 'psnr_y<10 for 5f' fired (psnr_y=9.5)",
            "input '-': cannot open: End of file",
            "--ref-opt <KEY=VALUE>",
        ] {
            assert!(matches!(redact(s), Cow::Borrowed(_)), "{s}");
        }
    }

    #[test]
    fn userinfo_is_hidden_whole() {
        assert_eq!(
            r("srt://user:pa55@host:9000?mode=caller"),
            "srt://***@host:9000?mode=caller"
        );
        assert_eq!(
            r("rtsp://admin:x@10.0.0.2/live"),
            "rtsp://***@10.0.0.2/live"
        );
        assert_eq!(r("https://TOKEN@host/a.m3u8"), "https://***@host/a.m3u8");
        assert_eq!(r("rtmp://u:p@ss@host/app"), "rtmp://***@host/app");
        // a password with a slash, told from a port
        assert_eq!(r("rtmp://u:pa/ss@host/app"), "rtmp://***@host/app");
        assert_eq!(r("http://host:80/a@b"), "http://host:80/a@b");
        assert_eq!(r("http://[::1]:80/a@b"), "http://[::1]:80/a@b");
        assert_eq!(r("srt://u:p@[::1]:9000"), "srt://***@[::1]:9000");
        // the `@` of a query is no userinfo's
        assert_eq!(r("udp://h:1?x=a@b"), "udp://h:1?x=a@b");
        assert_eq!(r("UDP://u:p@127.0.0.1:5"), "UDP://***@127.0.0.1:5");
        assert_eq!(r("http://@host/"), "http://@host/");
    }

    #[test]
    fn sensitive_query_values_are_hidden_and_the_rest_kept() {
        assert_eq!(
            r("srt://h:1?mode=listener&passphrase=SECRETxyz123&latency=20"),
            "srt://h:1?mode=listener&passphrase=***&latency=20"
        );
        for key in [
            "key",
            "token",
            "password",
            "passwd",
            "pass",
            "pwd",
            "auth",
            "secret",
            "signature",
            "sig",
            "access_token",
            "api_key",
            "apikey",
            "StreamKey",
            "X-Amz-Signature",
            "X-Amz-Security-Token",
            "X-Amz-Credential",
            "Authorization",
            "client_secret",
            "rtmp_conn",
            "hdnts",
            "PASSPHRASE",
            "api%5Fkey",
        ] {
            assert_eq!(
                r(&format!("https://h/x?a=1&{key}=S3cr%26t;b=2&c=3")),
                format!("https://h/x?a=1&{key}=***&c=3"),
                "{key}"
            );
        }
        // `;`-separated and fragment parameters
        assert_eq!(r("http://h/x;token=abc"), "http://h/x;token=***");
        assert_eq!(
            r("http://h/x#a=1&access_token=abc"),
            "http://h/x#a=1&access_token=***"
        );
        // empty values have nothing to hide; keys that only look alike stay
        assert_eq!(
            r("srt://h:1?passphrase=&pbkeylen=16"),
            "srt://h:1?passphrase=&pbkeylen=16"
        );
        assert_eq!(
            r("udp://h:1?keyframes=1&monkeys=2"),
            "udp://h:1?keyframes=1&monkeys=2"
        );
    }

    #[test]
    fn urls_inside_messages_are_found_and_end_at_their_quote() {
        assert_eq!(
            r("input 'srt://u:p@h:1?passphrase=abcdefghij': no data arrived"),
            "input 'srt://***@h:1?passphrase=***': no data arrived"
        );
        assert_eq!(
            r("\"http://a:b@h/x?token=t\" and 'rtmp://c:d@h2/app' then udp://h3:5?key=k"),
            "\"http://***@h/x?token=***\" and 'rtmp://***@h2/app' then udp://h3:5?key=***"
        );
        // a URL nested in another's query
        assert_eq!(
            r("http://h/p?next=rtmp://u:p@h2/app&x=1"),
            "http://h/p?next=rtmp://***@h2/app&x=1"
        );
        // userinfo holding what looks like a parameter is hidden once
        assert_eq!(
            r("srt://u:token=x@h:1?mode=caller"),
            "srt://***@h:1?mode=caller"
        );
    }

    #[test]
    fn options_echoed_in_messages_are_hidden() {
        assert_eq!(
            r("--dist-opt '3:passphrase=abcdefghij': there is no distorted input 3"),
            "--dist-opt '3:passphrase=***': there is no distorted input 3"
        );
        assert_eq!(
            r("rtmp://h/app/x live=1 token=abc conn=S:xyz"),
            "rtmp://h/app/x live=1 token=*** conn=***"
        );
        assert_eq!(
            r("--ref-opt 'headers=Authorization: Bearer abc.def'"),
            "--ref-opt 'headers=*** Bearer ***'"
        );
        assert_eq!(r("Basic  dXNlcjpwYXNz"), "Basic  ***");
        // inside a path a `key=` is no option
        assert_eq!(r("/data/token=1/a.mp4"), "/data/token=1/a.mp4");
        assert_eq!(
            r("invalid value for '--ref-opt <KEY=VALUE>'"),
            "invalid value for '--ref-opt <KEY=VALUE>'"
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 500,
            ..Default::default()
        })]

        #[test]
        fn any_text_is_cut_whole_and_hidden_once(text in "[a-zA-Z0-9:/@?&=#;%' \"é]{0,60}") {
            let once = r(&text);
            proptest::prop_assert_eq!(r(&once), once.clone());
        }

        #[test]
        fn a_secret_in_any_place_of_a_url_is_hidden(
            scheme in "(srt|rtmp|rtsp|https?|udp)",
            user in "[a-z]{0,6}",
            secret in "[A-Za-z0-9]{8,12}",
            key in "(passphrase|Token|key|pwd|AUTH|x-api-key|sig)",
            before in "(|a=1&|mode=caller;)",
            after in "(|&b=2|#frag)",
            quoted in proptest::bool::ANY,
        ) {
            let urls = [
                format!("{scheme}://{user}:{secret}@h.example:9000/p?{before}x=1"),
                format!("{scheme}://h.example:9000/p?{before}{key}={secret}{after}"),
                format!("{scheme}://{secret}@h.example/p"),
            ];
            for url in urls {
                let text = if quoted { format!("input '{url}': failed") } else { url };
                let shown = r(&text);
                proptest::prop_assert!(!shown.contains(&secret), "{} -> {}", text, shown);
                proptest::prop_assert!(shown.contains("h.example"), "{} -> {}", text, shown);
            }
        }
    }

    #[test]
    fn non_ascii_text_is_cut_on_character_boundaries() {
        assert_eq!(
            r("entrée 'srt://ü:ß@hôte:1?passphrase=été€' — fin"),
            "entrée 'srt://***@hôte:1?passphrase=***' — fin"
        );
        assert_eq!(r("é=1 ü token=€"), "é=1 ü token=***");
    }
}
