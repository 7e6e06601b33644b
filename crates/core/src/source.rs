//! Source positions: where in which file a value was written.

use std::fmt;
use std::sync::Arc;

/// A position in a source file: the file as the user named it, a 1-based line and a 1-based
/// column.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Span {
    /// The file, as given on the command line joined with the layer's relative path.
    pub file: Arc<str>,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
}

impl Span {
    /// A span at `line:column` of `file`.
    pub fn new(file: Arc<str>, line: u32, column: u32) -> Self {
        Span { file, line, column }
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// A path to a field inside the spec, as users read it: `accounts[1].network.azs`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldPath {
    segments: Vec<Segment>,
}

/// One step of a [`FieldPath`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Segment {
    /// A key of a mapping.
    Key(String),
    /// An index into a sequence.
    Index(usize),
}

impl FieldPath {
    /// The empty path: the document root.
    pub fn root() -> Self {
        FieldPath::default()
    }

    /// This path extended by a mapping key.
    #[must_use]
    pub fn key(&self, key: impl Into<String>) -> Self {
        let mut next = self.clone();
        next.segments.push(Segment::Key(key.into()));
        next
    }

    /// This path extended by a sequence index.
    #[must_use]
    pub fn index(&self, index: usize) -> Self {
        let mut next = self.clone();
        next.segments.push(Segment::Index(index));
        next
    }

    /// The steps of the path, outermost first.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Whether this is the document root.
    pub fn is_root(&self) -> bool {
        self.segments.is_empty()
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.segments.is_empty() {
            return f.write_str("(root)");
        }
        for (position, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Key(key) if position == 0 => f.write_str(key)?,
                Segment::Key(key) => write!(f, ".{key}")?,
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// Builds paths tersely in validation code: `path!("accounts", 1, "vpc_cidr")`.
#[macro_export]
macro_rules! path {
    ($($segment:expr),* $(,)?) => {{
        #[allow(unused_mut)]
        let mut path = $crate::FieldPath::root();
        $( path = $crate::source::IntoSegment::push_onto($segment, path); )*
        path
    }};
}

/// Something that can extend a [`FieldPath`]: a key (`&str`, `String`) or an index (`usize`).
pub trait IntoSegment {
    /// Appends `self` to `path`.
    fn push_onto(self, path: FieldPath) -> FieldPath;
}

impl IntoSegment for &str {
    fn push_onto(self, path: FieldPath) -> FieldPath {
        path.key(self)
    }
}

impl IntoSegment for String {
    fn push_onto(self, path: FieldPath) -> FieldPath {
        path.key(self)
    }
}

impl IntoSegment for usize {
    fn push_onto(self, path: FieldPath) -> FieldPath {
        path.index(self)
    }
}

impl IntoSegment for FieldPath {
    fn push_onto(self, mut path: FieldPath) -> FieldPath {
        path.segments.extend(self.segments);
        path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_display_like_users_write_them() {
        assert_eq!(path!("accounts", 1usize, "network", "azs").to_string(), "accounts[1].network.azs");
        assert_eq!(FieldPath::root().to_string(), "(root)");
    }
}
