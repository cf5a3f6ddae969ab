//! The operators of a label matcher, as the rule language, silences and
//! Alertmanager write them. A leaf: the expression language, the silences
//! and their stored rows share it.

crate::closed_set! {
    /// How a label matcher compares a label's value.
    pub enum MatchOp {
        /// `=`
        Eq = "=",
        /// `!=`
        Ne = "!=",
        /// `=~`, a regular expression anchored at both ends
        Re = "=~",
        /// `!~`
        NotRe = "!~",
    }
}
