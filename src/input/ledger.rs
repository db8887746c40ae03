//! What a decoder did with its packets: the ones it refused (no picture
//! came out for them: a decode error even though FFmpeg reported none),
//! and pictures whose size or pixel format changed mid-stream.
//!
//! A video decoder outputs pictures in presentation order, so once
//! pictures stamped after `t` have come out, a packet sent with the stamp
//! `t` whose picture has not come out never will. Streams whose stamps do
//! not quite follow that (two joined recordings overlap by a frame or two)
//! are allowed for: a packet is judged only against the earliest of the
//! last [`SETTLE`] pictures out.

use std::collections::{BTreeMap, VecDeque};

use ffmpeg_next::format::Pixel;

use super::format;

/// Packets waiting for their picture, beyond which the accounting stops
/// (a stream whose packets and pictures do not match one to one).
const MAX_PENDING: usize = 512;

/// Pictures that come out before a packet stamped earlier is judged.
const SETTLE: usize = 16;

/// A decoder's account of packets in and pictures out.
#[derive(Debug)]
pub(super) struct Ledger {
    /// Whether packets are matched with pictures at all: not for codecs
    /// with packets that show no picture by design (VP8's alternate
    /// reference frames, AV1's and VP9's hidden frames) nor for
    /// field-coded streams (two packets a picture).
    enabled: bool,
    /// Timestamps of packets sent whose picture has not come out.
    pending: BTreeMap<i64, u32>,
    /// Stamps of the last [`SETTLE`] pictures out.
    recent: VecDeque<i64>,
    /// The size and format of the last picture (at first: as declared).
    shape: (Pixel, u32, u32),
    /// Something went wrong since the last picture (a read or decode
    /// error, a corrupt or refused packet): a jump in the timestamps that
    /// follows is frames lost, not a variable frame rate.
    pub(super) troubled: bool,
    /// The container is a transport for constant-rate broadcast (MPEG-TS,
    /// RTP): a jump in its timestamps is frames lost on the way, even
    /// when no error was seen (whole packets can vanish with the bytes
    /// around them).
    pub(super) transport: bool,
    /// The pictures now come from damaged data: since something went
    /// wrong, until the next clean keyframe.
    pub(super) damaged: bool,
    /// A clean keyframe came out of this session.
    pub(super) started: bool,
}

impl Ledger {
    pub(super) fn new(
        codec: &str,
        container: &str,
        interlaced: bool,
        shape: (Pixel, u32, u32),
    ) -> Self {
        Ledger {
            transport: matches!(container, "mpegts" | "mpegtsraw" | "rtp" | "rtsp" | "sdp"),
            enabled: !interlaced && !matches!(codec, "vp8" | "vp9" | "av1"),
            pending: BTreeMap::new(),
            recent: VecDeque::with_capacity(SETTLE),
            shape,
            troubled: false,
            // until the first clean keyframe (a live stream joined between
            // keyframes gives pictures decoded without their references)
            damaged: true,
            started: false,
        }
    }

    /// A packet stamped `pts` was sent to the decoder; `discard` when the
    /// demuxer marked it to be decoded but not shown (the frames before an
    /// edit list's start), so no picture is owed for it.
    pub(super) fn sent(&mut self, pts: Option<i64>, discard: bool) {
        let Some(t) = pts.filter(|_| self.enabled && !discard) else {
            return;
        };
        *self.pending.entry(t).or_default() += 1;
        if self.pending.len() > MAX_PENDING {
            self.enabled = false;
            self.pending.clear();
        }
    }

    /// Forgets the packets stamped before `pts` (a live stream joined
    /// between keyframes: what came before its first keyframe owes no
    /// picture).
    pub(super) fn forget_before(&mut self, pts: Option<i64>) {
        if let Some(t) = pts {
            self.pending = self.pending.split_off(&t);
        }
        self.troubled = false;
    }

    /// A picture stamped `pts` came out: the timestamps of the packets
    /// that will never give one, now known.
    pub(super) fn out(&mut self, pts: Option<i64>) -> Vec<i64> {
        let Some(t) = pts.filter(|_| self.enabled) else {
            return Vec::new();
        };
        if self.pending.range(..t).next().is_some() {
            // a packet stamped earlier has given no picture yet (pictures
            // come out in order): a jump before this one is not a variable
            // frame rate until that packet is accounted for
            self.troubled = true;
        }
        if let Some(n) = self.pending.get_mut(&t) {
            *n -= 1;
            if *n == 0 {
                self.pending.remove(&t);
            }
        }
        if self.recent.len() == SETTLE {
            self.recent.pop_front();
        }
        self.recent.push_back(t);
        if self.recent.len() < SETTLE {
            return Vec::new();
        }
        let Some(&floor) = self.recent.iter().min() else {
            return Vec::new();
        };
        let later = self.pending.split_off(&floor);
        let refused = std::mem::replace(&mut self.pending, later);
        refused
            .into_iter()
            .flat_map(|(t, n)| std::iter::repeat_n(t, n as usize))
            .collect()
    }

    /// The decoder is flushed: every packet still waiting was refused.
    pub(super) fn end(&mut self) -> Vec<i64> {
        std::mem::take(&mut self.pending)
            .into_iter()
            .flat_map(|(t, n)| std::iter::repeat_n(t, n as usize))
            .collect()
    }

    /// A picture of `shape` came out: the change, if it differs from the
    /// last one (`yuv420p 640x360` → `yuv420p 320x240`).
    pub(super) fn reshape(&mut self, shape: (Pixel, u32, u32)) -> Option<(String, String)> {
        if shape == self.shape {
            return None;
        }
        let name = |(p, w, h): (Pixel, u32, u32)| format!("{} {w}x{h}", format::name(p));
        let change = (name(self.shape), name(shape));
        self.shape = shape;
        Some(change)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: (Pixel, u32, u32) = (Pixel::YUV420P, 64, 48);

    #[test]
    fn packets_before_the_first_picture_that_never_came_out_are_refused() {
        let mut l = Ledger::new("h264", "mpegts", false, S);
        // two undecodable packets, then pictures 10.. in decode order
        // I P B B I P B B ...
        l.sent(Some(5), false);
        l.sent(Some(6), false);
        let mut refused = Vec::new();
        for g in 0..8 {
            let b = 10 + 4 * g;
            for t in [b, b + 3, b + 1, b + 2] {
                l.sent(Some(t), false);
            }
            for t in b..b + 4 {
                refused.extend(l.out(Some(t)));
            }
        }
        assert_eq!(refused, vec![5, 6], "judged once {SETTLE} pictures are out");
        assert!(l.end().is_empty());
    }

    #[test]
    fn packets_left_at_the_end_are_refused_and_duplicates_count() {
        let mut l = Ledger::new("h264", "mpegts", false, S);
        for t in [1, 2, 2, 3] {
            l.sent(Some(t), false);
        }
        assert!(l.out(Some(1)).is_empty());
        assert!(l.out(Some(3)).is_empty());
        l.sent(Some(4), false);
        assert_eq!(l.end(), vec![2, 2, 4]);
    }

    #[test]
    fn a_picture_that_comes_out_a_little_late_is_not_refused() {
        // two joined recordings: the second's first stamps repeat the
        // first's last ones, and come out after a later one
        let mut l = Ledger::new("h264", "mpegts", false, S);
        let order: Vec<i64> = (0..40).chain([40, 41, 40, 41]).chain(42..80).collect();
        let mut refused = Vec::new();
        for t in &order {
            l.sent(Some(*t), false);
        }
        for t in [
            (0..40).collect::<Vec<i64>>(),
            vec![40, 41, 40, 41],
            (42..80).collect(),
        ]
        .concat()
        {
            refused.extend(l.out(Some(t)));
        }
        assert!(refused.is_empty(), "{refused:?}");
        assert!(l.end().is_empty());
    }

    #[test]
    fn hidden_frame_codecs_and_field_coding_are_not_accounted() {
        for (codec, interlaced) in [
            ("vp8", false),
            ("vp9", false),
            ("av1", false),
            ("h264", true),
        ] {
            let mut l = Ledger::new(codec, "matroska,webm", interlaced, S);
            l.sent(Some(1), false);
            l.sent(Some(2), false);
            assert!(l.out(Some(2)).is_empty(), "{codec}");
            assert!(l.end().is_empty(), "{codec}");
        }
        let mut l = Ledger::new("h264", "mpegts", false, S);
        l.sent(None, false);
        assert!(l.out(None).is_empty());
    }

    #[test]
    fn a_stream_that_never_matches_stops_being_accounted() {
        let mut l = Ledger::new("h264", "mpegts", false, S);
        for t in 0..=MAX_PENDING as i64 {
            l.sent(Some(t), false);
        }
        assert!(l.out(Some(MAX_PENDING as i64 + 5)).is_empty());
    }

    #[test]
    fn discarded_packets_owe_no_picture_and_an_unshown_packet_troubles_a_jump() {
        let mut l = Ledger::new("h264", "mov,mp4,m4a,3gp,3g2,mj2", false, S);
        l.sent(Some(1), true);
        l.sent(Some(2), false);
        l.sent(Some(3), false);
        assert!(l.out(Some(2)).is_empty());
        assert!(!l.troubled);
        l.sent(Some(4), false);
        // 3 gave no picture: the jump to 4 is not a variable frame rate
        l.out(Some(4));
        assert!(l.troubled);
        // 3 is refused at the end; 1 (discarded) never owed a picture
        assert_eq!(l.end(), vec![3]);
    }

    #[test]
    fn a_new_size_or_format_is_a_change_once() {
        let mut l = Ledger::new("h264", "mpegts", false, S);
        assert_eq!(l.reshape(S), None);
        let (from, to) = l.reshape((Pixel::YUV420P, 32, 24)).unwrap();
        assert_eq!(
            (from.as_str(), to.as_str()),
            ("yuv420p 64x48", "yuv420p 32x24")
        );
        assert_eq!(l.reshape((Pixel::YUV420P, 32, 24)), None);
        assert!(l.reshape((Pixel::YUV444P, 32, 24)).is_some());
    }
}
