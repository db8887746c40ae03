use super::series::*;
use super::*;

/// A run's state after its header: the reference and one distorted
/// input, `keys` measured.
fn state(keys: &[&str]) -> State {
    let keys: Vec<KeySeries> = keys.iter().map(|k| key_series(k)).collect();
    let inputs = vec![
        Series::new("reference".into(), "r.ts".into(), Role::Reference, &keys),
        Series::new("0".into(), "d.ts".into(), Role::Distorted, &keys),
    ];
    State {
        keys,
        inputs,
        finished: false,
    }
}

fn frame(st: &mut State, values: &[f64], pending: bool, damaged: bool) {
    let keys: Vec<String> = Vec::new();
    st.frame(&FrameRecord {
        input: 0,
        path: "d.ts",
        frame: 0,
        ref_frame: 0,
        dist_frame: 0,
        pts: 1.5,
        keys: &keys,
        values,
        lag_ms: None,
        align_ms: None,
        pending,
        damaged,
        every: 1,
    });
}

/// The page's samples by series.
fn samples(page: &str) -> Vec<(String, String)> {
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect()
}

fn value<'a>(page: &'a [(String, String)], series: &str) -> Option<&'a str> {
    page.iter()
        .find(|(k, _)| k == series)
        .map(|(_, v)| v.as_str())
}

#[test]
fn the_histogram_counts_trusted_values_cumulatively() {
    let mut st = state(&["psnr_y", "ssim_y"]);
    // 25 is in its own bucket (le), 70 only in +Inf
    for v in [29.0, 31.0, 70.0, 25.0] {
        frame(&mut st, &[v, 0.96], false, false);
    }
    // pending, damaged, not a number: not counted
    frame(&mut st, &[10.0, 0.1], true, false);
    frame(&mut st, &[11.0, 0.1], false, true);
    frame(&mut st, &[f64::NAN, 0.1], false, false);
    let page = render(&st);
    let got = samples(&page);
    let l = "input=\"0\",stream=\"d.ts\",plane=\"y\"";
    let bucket = |le: &str| {
        value(
            &got,
            &format!("vqm_frame_psnr_db_bucket{{{l},le=\"{le}\"}}"),
        )
        .unwrap()
    };
    for (le, n) in [
        ("20", "0"),
        ("25", "1"),
        ("30", "2"),
        ("32", "3"),
        ("45", "3"),
        ("60", "3"),
        ("+Inf", "4"),
    ] {
        assert_eq!(bucket(le), n, "le={le}\n{page}");
    }
    assert_eq!(
        value(&got, &format!("vqm_frame_psnr_db_count{{{l}}}")),
        Some("4")
    );
    assert_eq!(
        value(&got, &format!("vqm_frame_psnr_db_sum{{{l}}}")),
        Some("155")
    );
    // the other key: its own buckets, 0.1 below the first
    let ssim =
        |le: &str| value(&got, &format!("vqm_frame_ssim_bucket{{{l},le=\"{le}\"}}")).unwrap();
    assert_eq!((ssim("0.5"), ssim("0.95"), ssim("0.97")), ("1", "1", "5"));
    assert_eq!(ssim("+Inf"), "5");
    assert!(
        page.contains("# TYPE vqm_frame_psnr_db histogram\n"),
        "{page}"
    );
    // the bounds rise, and every bucket holds the ones below
    let counts: Vec<u64> = got
        .iter()
        .filter(|(k, _)| k.starts_with("vqm_frame_psnr_db_bucket"))
        .map(|(_, v)| v.parse().unwrap())
        .collect();
    assert_eq!(counts.len(), DB_BUCKETS.len() + 1);
    assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
    // the latest gauge: the last frame's value was not a number
    assert_eq!(value(&got, &format!("vqm_psnr_db{{{l}}}")), None);
    assert_eq!(value(&got, &format!("vqm_ssim{{{l}}}")), Some("0.1"));
}

#[test]
fn gauges_are_absent_until_known_never_nan() {
    let mut st = state(&["psnr_y"]);
    let l = "input=\"0\",stream=\"d.ts\"";
    let lp = format!("{l},plane=\"y\"");
    let check = |st: &State, present: &[&str], absent: &[&str]| {
        let page = render(st);
        assert!(!page.contains("NaN"), "{page}");
        let got = samples(&page);
        for s in present {
            assert!(value(&got, s).is_some(), "{s} missing:\n{page}");
        }
        for s in absent {
            assert!(value(&got, s).is_none(), "{s} served:\n{page}");
        }
        // every family keeps its HELP and TYPE
        for name in ["vqm_psnr_db", "vqm_sync_offset_frames", "vqm_lag_seconds"] {
            assert!(page.contains(&format!("# TYPE {name} gauge\n")), "{page}");
        }
    };
    let psnr = format!("vqm_psnr_db{{{lp}}}");
    let mean = format!("vqm_psnr_db_window{{{lp},stat=\"mean\"}}");
    let offset = format!("vqm_sync_offset_frames{{{l}}}");
    let confidence = format!("vqm_sync_psnr_db{{{l}}}");
    let pts = format!("vqm_pts_seconds{{{l}}}");
    let lag = format!("vqm_lag_seconds{{{l}}}");
    let align = format!("vqm_alignment_delay_seconds{{{l}}}");
    let count = format!("vqm_frame_psnr_db_count{{{lp}}}");
    let frames = format!("vqm_frames_total{{{l}}}");
    // the header only: counters and histograms at 0, no gauge of a value
    check(
        &st,
        &[&count, &frames],
        &[&psnr, &mean, &offset, &confidence, &pts, &lag, &align],
    );
    // a pair measured while the sync is pending
    st.event(&Event {
        kind: EventKind::SyncUncertain {
            reason: "searching",
            offset: 0,
            psnr: None,
            runner_up: None,
        },
        input: Some(0),
        source: None,
        message: String::new(),
    });
    frame(&mut st, &[30.0], true, false);
    check(&st, &[&pts, &count], &[&psnr, &mean, &offset, &confidence]);
    // the sync accepted, no trusted pair yet: still nothing to show
    st.event(&Event {
        kind: EventKind::Sync {
            offset: 2,
            psnr: Some(41.5),
            runner_up: None,
            keeps_pending: false,
            delay: None,
            shift: None,
        },
        input: Some(0),
        source: None,
        message: String::new(),
    });
    check(&st, &[&offset, &confidence], &[&psnr, &mean]);
    // a damaged picture is not a value either
    frame(&mut st, &[12.0], false, true);
    check(&st, &[&offset], &[&psnr, &mean]);
    // the first trusted pair
    frame(&mut st, &[33.0], false, false);
    check(&st, &[&psnr], &[&mean, &lag, &align]);
    assert_eq!(value(&samples(&render(&st)), &psnr), Some("33"));
    assert_eq!(value(&samples(&render(&st)), &count), Some("1"));
}

#[test]
fn keys_become_a_family_with_its_unit_and_a_plane() {
    let k = key_series("psnr_y");
    assert_eq!((k.family.as_str(), k.plane.as_str()), ("vqm_psnr_db", "y"));
    let k = key_series("ms_ssim_all");
    assert_eq!(
        (k.family.as_str(), k.plane.as_str()),
        ("vqm_ms_ssim", "all")
    );
    let k = key_series("entropy_ref_u");
    assert_eq!(
        (k.family.as_str(), k.plane.as_str()),
        ("vqm_entropy_ref", "u")
    );
    let k = key_series("psnr_yuv611");
    assert_eq!(
        (k.family.as_str(), k.plane.as_str()),
        ("vqm_psnr_db", "yuv611")
    );
    let k = key_series("vmaf");
    assert_eq!((k.family.as_str(), k.plane.as_str()), ("vqm_vmaf", ""));
    // libvmaf's extractors keep to families of their own, apart from
    // vqm's PSNR and SSIM
    for (key, family, label, plane) in [
        ("float_ssim", "vqm_float_ssim", "plane", ""),
        ("float_ms_ssim", "vqm_float_ms_ssim", "plane", ""),
        ("cambi", "vqm_cambi", "plane", ""),
        ("ciede2000", "vqm_ciede2000", "plane", ""),
        ("psnr_hvs", "vqm_psnr_hvs_db", "plane", "all"),
        ("psnr_hvs_cb", "vqm_psnr_hvs_db", "plane", "cb"),
        (
            "vmaf_ci_p95_lo",
            "vqm_vmaf_bootstrap",
            "figure",
            "ci_p95_lo",
        ),
        ("vmaf_bagging", "vqm_vmaf_bootstrap", "figure", "bagging"),
    ] {
        let k = key_series(key);
        assert_eq!(
            (k.family.as_str(), k.label, k.plane.as_str()),
            (family, label, plane),
            "{key}"
        );
    }
    // the histogram: its family, with the unit last, and the buckets
    // of the key's scale
    for (key, histogram, buckets) in [
        ("psnr_avg", "vqm_frame_psnr_db", DB_BUCKETS),
        ("psnr_hvs_cb", "vqm_frame_psnr_hvs_db", DB_BUCKETS),
        ("ciede2000", "vqm_frame_ciede2000", DB_BUCKETS),
        ("ssim_all", "vqm_frame_ssim", UNIT_BUCKETS),
        ("ms_ssim_y", "vqm_frame_ms_ssim", UNIT_BUCKETS),
        ("float_ssim", "vqm_frame_float_ssim", UNIT_BUCKETS),
        ("vmaf", "vqm_frame_vmaf", VMAF_BUCKETS),
        ("vmaf_ci_p95_lo", "vqm_frame_vmaf_bootstrap", VMAF_BUCKETS),
        ("vmaf_stddev", "vqm_frame_vmaf_bootstrap", WIDE_BUCKETS),
        ("mse_y", "vqm_frame_mse", WIDE_BUCKETS),
        ("cambi", "vqm_frame_cambi", WIDE_BUCKETS),
        ("integer_adm2", "vqm_frame_vmaf_feature", WIDE_BUCKETS),
    ] {
        let k = key_series(key);
        assert_eq!((k.histogram().as_str(), k.buckets), (histogram, buckets));
    }
    for b in [DB_BUCKETS, UNIT_BUCKETS, VMAF_BUCKETS, WIDE_BUCKETS] {
        assert!(b.windows(2).all(|w| w[0] < w[1]), "{b:?}");
    }
    for key in ["integer_adm2", "integer_vif_scale3", "integer_adm2_egl_1"] {
        let k = key_series(key);
        assert_eq!(
            (k.family.as_str(), k.label, k.plane.as_str()),
            ("vqm_vmaf_feature", "feature", key)
        );
    }
}
