//! One analyzer as a tantivy tokenizer: char filters, then a tokenizer, then token filters,
//! run eagerly over a value into a list of tokens.
//!
//! Char filters rewrite the text, so each keeps a map from the bytes it wrote back to the
//! bytes it read: token offsets always point into the original text, on character
//! boundaries (highlighting slices the `_source` text by them).

use tantivy::tokenizer::{Token, TokenStream, Tokenizer};

use super::char_filters::CharFilter;
use super::filters::TokenFilterSpec;
use super::mapped::Mapped;
use super::tokenizers::TokenizerSpec;

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
