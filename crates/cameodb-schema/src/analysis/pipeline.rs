//! One analyzer as a tantivy tokenizer: char filters, then a tokenizer, then token filters,
//! run eagerly over a value into a list of tokens.
//!
//! Char filters rewrite the text, so each keeps a map from the bytes it wrote back to the
//! bytes it read: token offsets always point into the original text, on character
//! boundaries (highlighting slices the `_source` text by them).

use tantivy::tokenizer::{Token, TokenStream, Tokenizer};

use super::char_filters::CharFilter;
use super::filters::TokenFilterSpec;
use super::tokenizers::TokenizerSpec;

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

/// A configured analyzer.
#[derive(Clone)]
pub struct Pipeline {
    /// Applied to the text first, in order.
    pub(crate) char_filters: Vec<CharFilter>,
    /// Splits the (filtered) text into tokens.
    pub(crate) tokenizer: TokenizerSpec,
    /// Applied to the token list, in order.
    pub(crate) filters: Vec<TokenFilterSpec>,
}

impl Pipeline {
    /// Every token `text` yields, with offsets into `text`.
    pub fn tokens(&mut self, text: &str) -> Vec<Token> {
        let mut mapped = Mapped::identity(text);
        for filter in &self.char_filters {
            mapped = filter.apply(&mapped);
        }
        let mut tokens = self.tokenizer.tokenize(&mapped.text);
        for token in &mut tokens {
            token.offset_from = mapped.original(token.offset_from);
            token.offset_to = mapped.original(token.offset_to).max(token.offset_from);
        }
        for filter in &mut self.filters {
            tokens = filter.apply(tokens);
        }
        tokens
    }
}

impl Tokenizer for Pipeline {
    type TokenStream<'a> = ListStream;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> ListStream {
        ListStream {
            tokens: self.tokens(text),
            next: 0,
            current: Token::default(),
        }
    }
}

/// The tokens of one value, handed out in order.
pub struct ListStream {
    /// What the pipeline produced.
    tokens: Vec<Token>,
    /// Index of the next token to hand out.
    next: usize,
    /// The token handed out last.
    current: Token,
}

impl TokenStream for ListStream {
    fn advance(&mut self) -> bool {
        match self.tokens.get_mut(self.next) {
            Some(token) => {
                self.current = std::mem::take(token);
                self.next += 1;
                true
            }
            None => false,
        }
    }

    fn token(&self) -> &Token {
        &self.current
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.current
    }
}
