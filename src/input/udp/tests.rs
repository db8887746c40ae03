use super::*;

fn ring(cap: usize) -> Ring {
    Ring {
        buf: vec![0; cap].into_boxed_slice(),
        head: 0,
        len: 0,
        failed: None,
        base: 0,
        stamps: VecDeque::new(),
    }
}

#[test]
fn the_ring_keeps_order_across_its_end_and_drops_whole_oldest_packets() {
    let mut r = ring(188 * 4);
    let a: Vec<u8> = (0..188 * 3).map(|i| (i / 188) as u8).collect();
    assert_eq!(r.push(&a), 0);
    let mut out = vec![0u8; 188];
    assert_eq!(r.pop(&mut out), 188);
    assert!(out.iter().all(|&b| b == 0));
    // two more packets: the ring wraps round its end
    let b: Vec<u8> = vec![7; 188 * 2];
    assert_eq!(r.push(&b), 0);
    assert_eq!(r.len, 188 * 4);
    // one more: the oldest packet (1s) is dropped, whole
    assert_eq!(r.push(&[9; 100]), 188);
    let mut all = vec![0u8; 188 * 5];
    let n = r.pop(&mut all);
    assert_eq!(n, 188 * 3 + 100);
    let mut want = vec![2u8; 188];
    want.extend([7u8; 376]);
    want.extend([9u8; 100]);
    assert_eq!(&all[..n], &want[..]);
    assert_eq!(r.pop(&mut all), 0);
}

#[test]
fn plans_follow_ffmpegs_reading_of_the_url() {
    let p = plan("udp://127.0.0.1:5000", &[]).unwrap().unwrap();
    assert_eq!(p.bind, "0.0.0.0:5000".parse().unwrap());
    assert_eq!((p.group, p.reuse), (None, false));
    assert_eq!(p.capacity, FIFO_PACKETS * 188);
    let p = plan(
        "udp://@239.1.2.3:1234?fifo_size=1000&localaddr=10.0.0.1",
        &[],
    )
    .unwrap()
    .unwrap();
    assert_eq!(p.bind, "239.1.2.3:1234".parse().unwrap());
    assert_eq!(p.group, Some("239.1.2.3".parse().unwrap()));
    assert_eq!(p.interface, Some("10.0.0.1".parse().unwrap()));
    assert!(p.reuse);
    assert_eq!(p.capacity, 188_000);
    let p = plan(
        "udp://[::1]:7000",
        &[("buffer_size".into(), "1048576".into())],
    )
    .unwrap()
    .unwrap();
    assert_eq!(p.bind, "[::]:7000".parse().unwrap());
    assert_eq!(p.rcvbuf, Some(1_048_576));
    let p = plan("udp://:7001?reuse=1", &[]).unwrap().unwrap();
    assert_eq!((p.bind, p.reuse), ("0.0.0.0:7001".parse().unwrap(), true));
    // options only FFmpeg knows leave the input to FFmpeg
    assert_eq!(
        plan("udp://127.0.0.1:5000?sources=10.0.0.2", &[]).unwrap(),
        None
    );
    assert_eq!(
        plan("udp://127.0.0.1:5000", &[("timeout".into(), "5".into())]).unwrap(),
        None
    );
    assert_eq!(
        plan("udp://127.0.0.1:5000?overrun_nonfatal=0", &[]).unwrap(),
        None
    );
    assert_eq!(plan("udp://127.0.0.1:5000?fifo_size=0", &[]).unwrap(), None);
    assert_eq!(plan("srt://127.0.0.1:5000", &[]).unwrap(), None);
    // demuxer options that are not the protocol's do not matter
    assert!(
        plan(
            "udp://127.0.0.1:5000",
            &[("analyzeduration".into(), "1".into())]
        )
        .unwrap()
        .is_some()
    );
    assert!(plan("udp://127.0.0.1", &[]).is_err());
    assert!(plan("udp://127.0.0.1:5000?fifo_size=lots", &[]).is_err());
}

#[test]
fn datagrams_reach_the_reader_in_order_and_a_drop_ends_the_thread() {
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let p = plan(&format!("udp://127.0.0.1:{port}?fifo_size=10"), &[])
        .unwrap()
        .unwrap();
    let rx = Receiver::start("udp", &p).unwrap();
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..3u8 {
        tx.send_to(&[i; 188], ("127.0.0.1", port)).unwrap();
    }
    let io = Io::new(&rx, Box::new(|| false)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1000];
    while got.len() < 3 * 188 {
        // SAFETY: the callback as FFmpeg calls it, on this context's
        // reader and a writable buffer
        let n =
            unsafe { read_packet(io.reader as *mut c_void, buf.as_mut_ptr(), buf.len() as i32) };
        assert!(n > 0, "{n}");
        got.extend_from_slice(&buf[..n as usize]);
    }
    let want: Vec<u8> = (0..3u8).flat_map(|i| [i; 188]).collect();
    assert_eq!(got, want);
    assert_eq!(rx.overrun(), 0);
    // an interrupted read gives up
    let stop = Io::new(&rx, Box::new(|| true)).unwrap();
    // SAFETY: as above
    let n = unsafe { read_packet(stop.reader as *mut c_void, buf.as_mut_ptr(), 1000) };
    assert_eq!(n, ff::ffi::AVERROR_EXIT);
    drop((io, stop));
    drop(rx);
}

#[test]
fn each_byte_read_keeps_the_arrival_of_its_datagram() {
    let mut r = ring(188 * 8);
    let arrivals = Mutex::new(Arrivals::default());
    let a: Vec<u8> = vec![1; 188 * 2];
    r.push(&a);
    let t_a = r.stamps.back().unwrap().1;
    std::thread::sleep(Duration::from_millis(5));
    r.push(&[2; 188]);
    let t_b = r.stamps.back().unwrap().1;
    assert!(t_b > t_a);
    // read in pieces that split the datagrams
    let mut out = vec![0u8; 100];
    for _ in 0..5 {
        let from = r.base;
        let n = r.pop(&mut out);
        r.hand_over(from, &arrivals);
        assert!(n > 0);
    }
    let a = arrivals.lock().unwrap();
    assert_eq!(a.read, 500);
    // bytes 0..376 came in the first datagram; 376..564 in the second
    assert_eq!(a.at(0), Some(t_a));
    assert_eq!(a.at(375), Some(t_a));
    // the second datagram is not read whole yet: not known
    assert_eq!(a.at(376), None);
    drop(a);
    let from = r.base;
    r.pop(&mut out);
    r.hand_over(from, &arrivals);
    assert_eq!(arrivals.lock().unwrap().at(400), Some(t_b));
}

#[test]
fn bytes_dropped_from_a_full_ring_take_their_arrivals_with_them() {
    let mut r = ring(188 * 2);
    let arrivals = Mutex::new(Arrivals::default());
    r.push(&[1; 188]);
    r.push(&[2; 188]);
    std::thread::sleep(Duration::from_millis(5));
    r.push(&[3; 188]);
    let t3 = r.stamps.back().unwrap().1;
    assert_eq!(r.stamps.len(), 2, "the oldest datagram went with its bytes");
    let mut out = vec![0u8; 376];
    let from = r.base;
    assert_eq!(r.pop(&mut out), 376);
    r.hand_over(from, &arrivals);
    // the session read 376 bytes: the second and third datagrams
    assert_eq!(arrivals.lock().unwrap().at(200), Some(t3));
}
