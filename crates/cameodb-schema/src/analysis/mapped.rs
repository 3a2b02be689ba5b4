//! Rewritten text that remembers where each of its bytes came from: what char filters produce,
//! so token offsets can be mapped back into the original text.

/// Text with, for every byte offset of it (and its end), the offset in the original text it
/// came from.
pub(crate) struct Mapped {
    /// The rewritten text.
    pub text: String,
    /// `origin[i]`: the original offset of byte `i` of `text`; `len + 1` entries.
    pub origin: Vec<usize>,
}

impl Mapped {
    /// The identity mapping of `text`.
    pub fn identity(text: &str) -> Mapped {
        Mapped {
            text: text.to_string(),
            origin: (0..=text.len()).collect(),
        }
    }

    /// The original offset of byte `offset` of the rewritten text.
    pub fn original(&self, offset: usize) -> usize {
        self.origin
            .get(offset)
            .or_else(|| self.origin.last())
            .copied()
            .unwrap_or(0)
    }
}

/// Builds rewritten text piece by piece, recording where each piece came from.
pub(crate) struct MappedBuilder<'a> {
    /// The text being rewritten, with its own map to the original.
    source: &'a Mapped,
    /// What has been written so far.
    out: Mapped,
}

impl<'a> MappedBuilder<'a> {
    pub fn new(source: &'a Mapped) -> MappedBuilder<'a> {
        MappedBuilder {
            source,
            out: Mapped {
                text: String::with_capacity(source.text.len()),
                origin: Vec::with_capacity(source.text.len() + 1),
            },
        }
    }

    /// Copies `source[from..to]` unchanged (byte by byte, offsets kept).
    pub fn keep(&mut self, from: usize, to: usize) {
        if let Some(piece) = self.source.text.get(from..to) {
            self.out.text.push_str(piece);
            self.out
                .origin
                .extend((from..to).map(|i| self.source.original(i)));
        }
    }

    /// Writes `replacement` for `source[from..to]`: every byte of it maps to the span's start.
    pub fn replace(&mut self, from: usize, replacement: &str) {
        let at = self.source.original(from);
        self.out.text.push_str(replacement);
        self.out
            .origin
            .extend(std::iter::repeat_n(at, replacement.len()));
    }

    /// The rewritten text; its end maps to the end of the source.
    pub fn finish(mut self) -> Mapped {
        self.out
            .origin
            .push(self.source.original(self.source.text.len()));
        self.out
    }
}
