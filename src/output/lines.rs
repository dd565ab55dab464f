//! Splits a byte stream into lines, bounded by `--max-line`.
//!
//! Pure and allocation-light: the splitter keeps at most `max` bytes of an
//! unfinished line, hands out slices, and never looks at encodings.

/// One unit of output handed to the formatter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece<'a> {
    /// A complete line; the slice excludes the newline.
    Line(&'a [u8]),
    /// A piece of a line longer than `max`; more of the same line follows.
    Part(&'a [u8]),
    /// The unterminated last line, at end of input.
    Tail(&'a [u8]),
}

impl<'a> Piece<'a> {
    pub fn bytes(&self) -> &'a [u8] {
        match *self {
            Piece::Line(b) | Piece::Part(b) | Piece::Tail(b) => b,
        }
    }
}

#[derive(Debug)]
pub struct LineSplitter {
    pending: Vec<u8>,
    max: usize,
}

impl LineSplitter {
    /// `max` is the longest line kept whole; at least 1.
    pub fn new(max: usize) -> Self {
        LineSplitter {
            pending: Vec::new(),
            max: max.max(1),
        }
    }

    /// Bytes of an unfinished line currently held.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Feeds `data`, calling `emit` for each finished line or piece, in order.
    pub fn push(&mut self, mut data: &[u8], emit: &mut impl FnMut(Piece<'_>)) {
        if !self.pending.is_empty() {
            match memchr::memchr(b'\n', data) {
                Some(i) => {
                    self.pending.extend_from_slice(&data[..i]);
                    data = &data[i + 1..];
                    let line = std::mem::take(&mut self.pending);
                    emit_line(&line, self.max, emit);
                    self.pending = line;
                    self.pending.clear();
                }
                None => {
                    self.pending.extend_from_slice(data);
                    self.flush_long_pending(emit);
                    return;
                }
            }
        }
        while let Some(i) = memchr::memchr(b'\n', data) {
            emit_line(&data[..i], self.max, emit);
            data = &data[i + 1..];
        }
        let mut rest = data;
        while rest.len() > self.max {
            let cut = cut_point(rest, self.max);
            emit(Piece::Part(&rest[..cut]));
            rest = &rest[cut..];
        }
        self.pending.extend_from_slice(rest);
    }

    /// Raw mode, where the bytes go out unchanged: everything up to the last
    /// newline of `chunk` (after what was held) is returned at once, and only
    /// the unfinished line is held, bounded by `max` as in [`push`]. Takes the
    /// read buffer to avoid a copy in the common case.
    ///
    /// [`push`]: LineSplitter::push
    pub fn push_raw(&mut self, mut chunk: Vec<u8>) -> Vec<u8> {
        let mut out = match memchr::memrchr(b'\n', &chunk) {
            Some(j) => {
                let tail = chunk.split_off(j + 1);
                let out = if self.pending.is_empty() {
                    chunk
                } else {
                    let mut out = std::mem::take(&mut self.pending);
                    out.extend_from_slice(&chunk);
                    out
                };
                self.pending.extend_from_slice(&tail);
                out
            }
            None => {
                self.pending.extend_from_slice(&chunk);
                Vec::new()
            }
        };
        self.flush_long_pending(&mut |piece| out.extend_from_slice(piece.bytes()));
        out
    }

    /// Raw mode in place, for a caller that keeps the unfinished line at the
    /// front of its own read buffer: `buf` is that line (if any) followed by
    /// the new bytes. Returns how many bytes from the front may go out now —
    /// exactly the bytes [`push`] would release — so that what stays (the
    /// unfinished line) is at most `max` bytes. A free function of the
    /// buffer: no copy, no state.
    ///
    /// [`push`]: LineSplitter::push
    pub fn raw_release(buf: &[u8], max: usize) -> usize {
        let max = max.max(1);
        let mut end = memchr::memrchr(b'\n', buf).map_or(0, |j| j + 1);
        // Cuts run from the start of the unfinished line, as in `push`, so
        // the pieces are the same wherever the reads happened to end.
        while buf.len() - end > max {
            end += cut_point(&buf[end..], max);
        }
        end
    }

    /// End of input: hands out the unterminated last line, if any.
    pub fn finish(&mut self, emit: &mut impl FnMut(Piece<'_>)) {
        if !self.pending.is_empty() {
            emit(Piece::Tail(&self.pending));
            self.pending.clear();
        }
    }

    fn flush_long_pending(&mut self, emit: &mut impl FnMut(Piece<'_>)) {
        if self.pending.len() <= self.max {
            return;
        }
        let mut start = 0;
        while self.pending.len() - start > self.max {
            let cut = cut_point(&self.pending[start..], self.max);
            emit(Piece::Part(&self.pending[start..start + cut]));
            start += cut;
        }
        self.pending.drain(..start);
    }
}

/// Where to cut `data` (longer than `max`) into a piece: at `max`, or up to
/// three bytes earlier so that a UTF-8 character is not split in two.
fn cut_point(data: &[u8], max: usize) -> usize {
    let is_continuation = |b: u8| b & 0xC0 == 0x80;
    if !is_continuation(data[max]) {
        return max;
    }
    (max.saturating_sub(3)..max)
        .rev()
        .find(|&j| j > 0 && data[j] >= 0xC0)
        .unwrap_or(max)
}

fn emit_line(mut line: &[u8], max: usize, emit: &mut impl FnMut(Piece<'_>)) {
    while line.len() > max {
        let cut = cut_point(line, max);
        emit(Piece::Part(&line[..cut]));
        line = &line[cut..];
    }
    emit(Piece::Line(line));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Eq)]
    enum Owned {
        Line(Vec<u8>),
        Part(Vec<u8>),
        Tail(Vec<u8>),
    }

    fn run(max: usize, chunks: &[&[u8]]) -> Vec<Owned> {
        let mut s = LineSplitter::new(max);
        let mut out = Vec::new();
        let mut emit = |p: Piece<'_>| {
            out.push(match p {
                Piece::Line(b) => Owned::Line(b.to_vec()),
                Piece::Part(b) => Owned::Part(b.to_vec()),
                Piece::Tail(b) => Owned::Tail(b.to_vec()),
            })
        };
        for c in chunks {
            s.push(c, &mut emit);
        }
        s.finish(&mut emit);
        out
    }

    fn l(s: &str) -> Owned {
        Owned::Line(s.as_bytes().to_vec())
    }
    fn p(s: &str) -> Owned {
        Owned::Part(s.as_bytes().to_vec())
    }
    fn t(s: &str) -> Owned {
        Owned::Tail(s.as_bytes().to_vec())
    }

    #[test]
    fn whole_lines_in_one_chunk() {
        assert_eq!(run(100, &[b"a\nbb\n"]), vec![l("a"), l("bb")]);
    }

    #[test]
    fn lines_across_chunks() {
        assert_eq!(
            run(100, &[b"he", b"llo\nwo", b"rld\n"]),
            vec![l("hello"), l("world")]
        );
    }

    #[test]
    fn partial_last_line_is_kept() {
        assert_eq!(run(100, &[b"a\nno newline"]), vec![l("a"), t("no newline")]);
    }

    #[test]
    fn empty_lines_survive() {
        assert_eq!(run(100, &[b"\n\nx\n"]), vec![l(""), l(""), l("x")]);
    }

    #[test]
    fn long_line_in_one_chunk_is_split() {
        assert_eq!(run(3, &[b"abcdefgh\n"]), vec![p("abc"), p("def"), l("gh")]);
    }

    #[test]
    fn exact_max_line_stays_whole() {
        assert_eq!(run(3, &[b"abc\n"]), vec![l("abc")]);
        assert_eq!(run(3, &[b"ab", b"c", b"\n"]), vec![l("abc")]);
    }

    #[test]
    fn long_line_across_chunks_is_split_and_bounded() {
        let mut s = LineSplitter::new(4);
        let mut n = 0;
        for _ in 0..100 {
            s.push(b"xyz", &mut |_| n += 1);
            assert!(s.pending_len() <= 4);
        }
        assert!(n > 0);
        assert_eq!(
            run(4, &[b"ab", b"cdef", b"gh", b"i\n"]),
            vec![p("abcd"), p("efgh"), l("i")]
        );
    }

    #[test]
    fn long_tail_is_split_then_tailed() {
        assert_eq!(run(2, &[b"abcde"]), vec![p("ab"), p("cd"), t("e")]);
    }

    #[test]
    fn pieces_do_not_split_utf8_characters() {
        let line = "x".to_string() + &"é".repeat(10) + "\n";
        let out = run(4, &[line.as_bytes()]);
        let mut joined = Vec::new();
        for piece in &out {
            let bytes = match piece {
                Owned::Line(b) | Owned::Part(b) | Owned::Tail(b) => b,
            };
            assert!(std::str::from_utf8(bytes).is_ok(), "{out:?}");
            assert!(!bytes.is_empty() && bytes.len() <= 4);
            joined.extend_from_slice(bytes);
        }
        assert_eq!(joined, line.trim_end().as_bytes());
        // Invalid bytes are still cut at max.
        assert_eq!(
            run(2, &[b"\x80\x80\x80\x80"]),
            vec![p_bytes(b"\x80\x80"), t_bytes(b"\x80\x80")]
        );
    }

    fn p_bytes(b: &[u8]) -> Owned {
        Owned::Part(b.to_vec())
    }
    fn t_bytes(b: &[u8]) -> Owned {
        Owned::Tail(b.to_vec())
    }

    #[test]
    fn raw_fast_path_matches_the_generic_path() {
        let mut seed = 0x9E3779B97F4A7C15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..300 {
            let max = 1 + (next() % 16) as usize;
            let (mut generic, mut fast) = (LineSplitter::new(max), LineSplitter::new(max));
            let (mut a, mut b) = (Vec::new(), Vec::new());
            for _ in 0..(next() % 20) {
                let len = (next() % 40) as usize;
                let chunk: Vec<u8> = (0..len)
                    .map(|_| {
                        if next() % 6 == 0 {
                            b'\n'
                        } else {
                            b'a' + (next() % 26) as u8
                        }
                    })
                    .collect();
                generic.push(&chunk, &mut |p| {
                    a.extend_from_slice(p.bytes());
                    if let Piece::Line(_) = p {
                        a.push(b'\n');
                    }
                });
                b.extend(fast.push_raw(chunk));
                // Same bytes released, same bytes held.
                assert_eq!(a, b);
                assert_eq!(generic.pending, fast.pending);
            }
        }
    }

    #[test]
    fn raw_release_matches_the_generic_path() {
        let mut seed = 0x5DEECE66Du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..500 {
            let max = 1 + (next() % 16) as usize;
            let mut generic = LineSplitter::new(max);
            let (mut a, mut b) = (Vec::new(), Vec::new());
            // The caller's buffer: the held unfinished line, then new bytes.
            let mut buf: Vec<u8> = Vec::new();
            for _ in 0..(next() % 20) {
                let len = (next() % 40) as usize;
                let chunk: Vec<u8> = (0..len)
                    .map(|_| match next() % 8 {
                        0 => b'\n',
                        1 => 0xC3,
                        2 => 0xA9,
                        _ => b'a' + (next() % 26) as u8,
                    })
                    .collect();
                generic.push(&chunk, &mut |p| {
                    a.extend_from_slice(p.bytes());
                    if let Piece::Line(_) = p {
                        a.push(b'\n');
                    }
                });
                buf.extend_from_slice(&chunk);
                let n = LineSplitter::raw_release(&buf, max);
                b.extend(buf.drain(..n));
                // Same bytes released, same bytes held, and held is bounded.
                assert_eq!(a, b);
                assert_eq!(generic.pending, buf);
                assert!(buf.len() <= max);
            }
        }
    }

    #[test]
    fn concatenation_reproduces_input() {
        // Property: joining pieces (newline after Line) gives the input back,
        // for pseudo-random inputs and chunkings.
        let mut seed = 0x2545F4914F6CDD1Du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..300 {
            let len = (next() % 400) as usize;
            let input: Vec<u8> = (0..len)
                .map(|_| {
                    if next() % 7 == 0 {
                        b'\n'
                    } else {
                        b'a' + (next() % 26) as u8
                    }
                })
                .collect();
            let max = 1 + (next() % 20) as usize;
            let mut s = LineSplitter::new(max);
            let mut out = Vec::new();
            let mut emit = |p: Piece<'_>| {
                assert!(
                    p.bytes().len() <= max
                        && (!p.bytes().is_empty() || !matches!(p, Piece::Part(_)))
                );
                out.extend_from_slice(p.bytes());
                if let Piece::Line(_) = p {
                    out.push(b'\n');
                }
            };
            let mut rest = &input[..];
            while !rest.is_empty() {
                let n = 1 + (next() as usize % rest.len().max(1));
                s.push(&rest[..n], &mut emit);
                rest = &rest[n..];
            }
            s.finish(&mut emit);
            assert_eq!(out, input);
        }
    }
}
