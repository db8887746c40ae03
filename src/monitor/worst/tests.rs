//! The worst-moment capture and its pictures.

use super::*;
use crate::metrics::ssim::{Precision, ssim_cs_gaussian_in};

/// Rows `first, first + step, …` of the whole map at the columns
/// `col, col + step, …`, through the strip reader the drawing uses.
fn luma_map(
    r: &Plane,
    d: &Plane,
    peak: f64,
    (first, col): (usize, usize),
    step: usize,
) -> Option<Vec<f64>> {
    let oh = r.height.checked_sub(WINDOW - 1)?;
    let last = first + (oh - 1 - first) / step * step;
    luma_map_strip(r, d, peak, (first, last), step, col)
}

#[test]
fn the_map_averages_to_the_plane_ssim() {
    let (w, h) = (140, 90);
    let a: Vec<u8> = (0..w * h).map(|i| ((i * 37) % 251) as u8).collect();
    let b: Vec<u8> = a.iter().map(|x| x.wrapping_add(x % 7)).collect();
    let pa = Plane {
        width: w,
        height: h,
        samples: Samples::U8(a.clone()),
    };
    let pb = Plane {
        width: w,
        height: h,
        samples: Samples::U8(b.clone()),
    };
    let ow = w - 10;
    let map = luma_map(&pa, &pb, 255.0, (0, 0), 1).unwrap();
    assert_eq!(map.len(), ow * (h - 10));
    let mean = map.iter().sum::<f64>() / map.len() as f64;
    let want = ssim_cs_gaussian_in(
        PlaneView::new(&a, w, h).unwrap(),
        PlaneView::new(&b, w, h).unwrap(),
        255.0,
        Precision::Double,
    )
    .unwrap()
    .ssim;
    // the same double-precision kernel, summed in another order
    assert!((mean - want).abs() < 1e-12, "{mean} vs {want}");
    assert!(map.iter().all(|v| *v <= 1.0 && v.is_finite()));
    // every third row from row 2 and column 1: the same values as
    // the whole map's
    let rows = luma_map(&pa, &pb, 255.0, (2, 1), 3).unwrap();
    let want: Vec<f64> = map
        .chunks(ow)
        .skip(2)
        .step_by(3)
        .flat_map(|row| row.iter().skip(1).step_by(3))
        .copied()
        .collect();
    assert_eq!(rows, want);
    // identical pictures: 1 everywhere
    let same = luma_map(&pa, &pa, 255.0, (0, 0), 1).unwrap();
    assert!(same.iter().all(|v| *v == 1.0));
}

fn labels(chroma: bool) -> Labels {
    Labels {
        reference: "in/ref.mp4".to_string(),
        distorted: vec!["in/dist.mp4".to_string()],
        keys: vec!["psnr_y".to_string(), "ssim_y".to_string()],
        chroma,
    }
}

#[test]
fn only_the_worst_are_kept_and_drawn_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let cap = WorstCapture::new(dir.path().to_str(), 2, 1, Better::Higher, labels(false));
    let f = Frame::from_u8(vec![(
        32,
        24,
        (0..32 * 24).map(|i| (i % 256) as u8).collect(),
    )]);
    for (frame, v) in [(0, 30.0), (1, 20.0), (2, 40.0), (3, 10.0), (4, f64::NAN)] {
        cap.offer(0, frame, &[v, 0.5], frame as f64 / 25.0, &f, &f);
    }
    let written = cap.write().unwrap();
    let names: Vec<String> = written
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        vec!["worst-0-01-frame3.png", "worst-0-02-frame1.png"]
    );
    // the pictures handed to the report are the files' bytes
    let pictures = cap.pictures();
    assert_eq!(pictures.len(), 2);
    assert_eq!((pictures[0].rank, pictures[0].frame), (1, 3));
    assert_eq!((pictures[0].value, pictures[0].time), (10.0, 0.12));
    assert_eq!(pictures[1].png, std::fs::read(&written[1]).unwrap());
    let lower = WorstCapture::new(dir.path().to_str(), 1, 1, Better::Lower, labels(false));
    for (frame, v) in [(0, 3.0), (1, 9.0), (2, 1.0)] {
        lower.offer(0, frame, &[v], 0.0, &f, &f);
    }
    let w = lower.write().unwrap();
    assert!(w[0].ends_with("worst-0-01-frame1.png"), "{w:?}");
}

#[test]
fn draws_a_three_panel_png() {
    let f = Frame::from_u8(vec![(
        64,
        48,
        (0..64 * 48).map(|i| (i % 256) as u8).collect(),
    )]);
    let png = draw(&f, &f).unwrap();
    let dec = png::Decoder::new(std::io::Cursor::new(png));
    let mut reader = dec.read_info().unwrap();
    let (w, h) = (reader.info().width as usize, reader.info().height as usize);
    assert_eq!((w, h), (192, 48));
    let mut img = vec![0u8; reader.output_buffer_size().unwrap()];
    reader.next_frame(&mut img).unwrap();
    let px = |x: usize, y: usize| &img[3 * (y * w + x)..3 * (y * w + x) + 3];
    // both gray panels show the samples; the map of identical pictures
    // is 1 (dark blue) inside the valid region and grey at the edges
    for (x, y) in [(0, 0), (7, 3), (63, 47), (20, 30)] {
        let s = ((y * 64 + x) % 256) as u8;
        assert_eq!(px(x, y), [s; 3]);
        assert_eq!(px(64 + x, y), [s; 3]);
    }
    assert_eq!(px(128 + 5, 5), heat(1.0));
    assert_eq!(px(128 + 58, 42), heat(1.0));
    assert_eq!(px(128 + 4, 20), [40, 40, 40]);
    assert_eq!(px(128 + 59, 20), [40, 40, 40]);
    assert_eq!(px(128 + 20, 43), [40, 40, 40]);
}
/// Decodes a PNG: width, height, RGB.
fn decode(png: &[u8]) -> (usize, usize, Vec<u8>) {
    let mut reader = png::Decoder::new(std::io::Cursor::new(png))
        .read_info()
        .unwrap();
    let (w, h) = (reader.info().width as usize, reader.info().height as usize);
    let mut img = vec![0u8; reader.output_buffer_size().unwrap()];
    reader.next_frame(&mut img).unwrap();
    (w, h, img)
}

#[test]
fn pictures_carry_labels_a_legend_and_chroma_when_asked() {
    let plane = |w: usize, h: usize, k: usize| -> (usize, usize, Vec<u8>) {
        (w, h, (0..w * h).map(|i| ((i * k) % 251) as u8).collect())
    };
    let f = Frame::from_u8(vec![plane(64, 48, 3), plane(32, 24, 5), plane(32, 24, 7)]);
    let mut pictures = Vec::new();
    for chroma in [false, true] {
        let cap = WorstCapture::new(None, 1, 1, Better::Higher, labels(chroma));
        cap.offer(0, 12, &[31.5, 0.9], 0.48, &f, &f);
        pictures.push(decode(&cap.pictures()[0].png));
    }
    let (w, h, img) = &pictures[0];
    assert_eq!(*w, 192);
    // a title band, the panels, a band of text and legend
    assert!(*h > 48 + 20, "{h}");
    let px = |x: usize, y: usize| &img[3 * (y * w + x)..3 * (y * w + x) + 3];
    let title = (0..*h).find(|y| px(0, *y) != [24, 24, 24]).unwrap();
    // the panels start under the title, the reference's samples
    for (x, y) in [(0, 0), (7, 3), (63, 47)] {
        let s = ((y * 64 + x) * 3 % 251) as u8;
        assert_eq!(px(x, title + y), [s; 3], "{x},{y}");
    }
    let band = |y0: usize, y1: usize, x0: usize, x1: usize, c: [u8; 3]| {
        (y0..y1).any(|y| (x0..x1).any(|x| px(x, y) == c))
    };
    // ink in the title over each panel, and in the text band
    for k in 0..3 {
        assert!(band(0, title, 64 * k, 64 * k + 64, [235; 3]), "title {k}");
    }
    assert!(band(title + 48, *h, 0, 128, [235; 3]));
    // the legend under the map runs from SSIM 1 to 0.5
    assert!(band(title + 48, *h, 128, 192, palette(1)));
    assert!(band(title + 48, *h, 128, 192, palette(255)));
    // chroma: the same width, two more rows of panels with their bands
    let (wc, hc, _) = &pictures[1];
    assert_eq!(*wc, 192);
    assert!(*hc >= h + 2 * 24, "{hc} vs {h}");
}

#[test]
fn a_wide_picture_is_drawn_at_panel_size_from_the_full_map() {
    // 1300 wide: panels are drawn every 3rd sample and map row
    wide_picture(40, false);
    // taller: the map is computed in strips, and a frame captured
    // during the run keeps its panels (smaller than its planes)
    wide_picture(200, true);
}

fn wide_picture(h: usize, captured: bool) {
    let w = 1300;
    let r: Vec<u8> = (0..w * h).map(|i| ((i * 7) % 251) as u8).collect();
    let d: Vec<u8> = r
        .iter()
        .enumerate()
        .map(|(i, x)| if i % 5 == 0 { x / 2 } else { *x })
        .collect();
    let (fr, fd) = (
        Frame::from_u8(vec![(w, h, r.clone())]),
        Frame::from_u8(vec![(w, h, d.clone())]),
    );
    let dir = tempfile::tempdir().unwrap();
    let png = if captured {
        let cap = WorstCapture::new(dir.path().to_str(), 1, 1, Better::Higher, labels(false));
        cap.offer(0, 7, &[0.5], 0.28, &fr, &fd);
        let lists = cap.lists.lock().unwrap();
        assert!(matches!(
            lists[0].pick()[0].item.picture,
            Picture::Panels(_)
        ));
        drop(lists);
        // drawn during the run or at the end: the same picture
        let later = WorstCapture::new(None, 1, 1, Better::Higher, labels(false));
        later.lists.lock().unwrap()[0].offer(
            7,
            0.5,
            Entry {
                picture: Picture::Planes(vec![(packed(&fr.planes[0]), packed(&fd.planes[0]))]),
                peak: 255.0,
                values: vec![0.5],
                time: 0.28,
            },
        );
        assert!(matches!(
            later.lists.lock().unwrap()[0].pick()[0].item.picture,
            Picture::Planes(_)
        ));
        assert_eq!(
            std::fs::read(&cap.write().unwrap()[0]).unwrap(),
            later.pictures()[0].png
        );
        draw(&fr, &fd).unwrap()
    } else {
        draw(&fr, &fd).unwrap()
    };
    let mut reader = png::Decoder::new(std::io::Cursor::new(png))
        .read_info()
        .unwrap();
    let iw = reader.info().width as usize;
    let (f, pw) = (3, 433);
    assert_eq!((iw, reader.info().height as usize), (3 * pw, h / f));
    let mut img = vec![0u8; reader.output_buffer_size().unwrap()];
    reader.next_frame(&mut img).unwrap();
    let full = luma_map(&fr.planes[0], &fd.planes[0], 255.0, (0, 0), 1).unwrap();
    let ow = w - 10;
    let mut checked = 0;
    for y in 2..h / f {
        for x in [2, 3, 100, 250, 430, 431, 432] {
            let (sx, sy) = (x * f, y * f);
            if sx - 5 >= ow || sy - 5 >= h - 10 {
                assert_eq!(img[3 * (y * iw + 2 * pw + x)], 40, "edge {x},{y}");
                continue;
            }
            let want = heat(full[(sy - 5) * ow + (sx - 5)]);
            let at = 3 * (y * iw + 2 * pw + x);
            assert_eq!(&img[at..at + 3], want, "panel pixel {x},{y}");
            assert_eq!(img[3 * (y * iw + x)], r[sy * w + sx]);
            assert_eq!(img[3 * (y * iw + pw + x)], d[sy * w + sx]);
            checked += 1;
        }
    }
    assert!(checked > 40);
}
