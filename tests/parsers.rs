//! Property tests: random and mutated config files, alert rules, gate
//! expressions, windows and sync specs never make a parser panic; they parse
//! or they say why.

use proptest::prelude::*;
use vqm::cli;
use vqm::config::{Config, DEFAULT_TOML};
use vqm::monitor::{alert, gate};
use vqm::stats::WindowSpec;

/// Mutations of a valid text: delete, insert or replace a few characters.
fn mutate(base: &'static str) -> impl Strategy<Value = String> {
    proptest::collection::vec((any::<u16>(), any::<u8>(), 0u8..3), 1..8).prop_map(move |edits| {
        let mut b: Vec<u8> = base.as_bytes().to_vec();
        for (pos, byte, kind) in edits {
            if b.is_empty() {
                b.push(byte);
                continue;
            }
            let i = pos as usize % b.len();
            match kind {
                0 => {
                    b.remove(i);
                }
                1 => b.insert(i, byte),
                _ => b[i] = byte,
            }
        }
        String::from_utf8_lossy(&b).into_owned()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn config_parser_never_panics_on_mutated_files(text in mutate(DEFAULT_TOML)) {
        let base = Config::builtin().unwrap();
        match base.overlay("fuzz.toml", &text) {
            Ok(c) => {
                prop_assert!(c.window_every <= 10_000_000);
                prop_assert!(c.queue_depth >= 1);
            }
            Err(e) => {
                let msg = e.to_string();
                prop_assert!(msg.starts_with("fuzz.toml:"), "{msg}");
                prop_assert_eq!(e.exit_code(), 2);
                prop_assert!(!msg.contains('\n'), "one line: {msg:?}");
            }
        }
    }

    #[test]
    fn config_parser_never_panics_on_any_text(text in "\\PC{0,200}") {
        let base = Config::builtin().unwrap();
        if let Err(e) = base.overlay("any.toml", &text) {
            prop_assert_eq!(e.exit_code(), 2);
        }
    }

    #[test]
    fn alert_rules_parse_or_explain(text in "[a-z_ <>=.0-9fors-]{0,40}") {
        match alert::parse(&text) {
            Ok(r) => prop_assert!(r.threshold.is_finite()),
            Err(e) => prop_assert!(!e.is_empty()),
        }
    }

    #[test]
    fn mutated_alert_rules_never_panic(text in mutate("ssim_y<0.90 for 2s")) {
        let _outcome = alert::parse(&text).map(|r| r.key.len());
    }

    #[test]
    fn gates_parse_or_explain(text in "[a-z_0-9() <>=.-]{0,40}") {
        match gate::parse(&text) {
            Ok(g) => prop_assert!(gate::STATS.contains(&g.stat.as_str())),
            Err(e) => prop_assert!(!e.is_empty()),
        }
    }

    #[test]
    fn mutated_gates_never_panic(text in mutate("p5(ssim_y)<0.92")) {
        let _outcome = gate::parse(&text).map(|g| g.threshold);
    }

    #[test]
    fn windows_and_sync_specs_never_panic(text in "\\PC{0,20}") {
        let _w = WindowSpec::parse(&text).map(|w| w.describe());
        let _s = cli::parse_sync(&text);
    }
}
