//! The one place a feature set is declared: [`feature_set!`] turns a list of `Variant =>
//! "name"` pairs into an enum whose order is the vector order, with the names beside it, so
//! features are written and read by name (`row[Local::GapCv]`), never by position, and no
//! list of names is typed twice. The names are the classifier's schema (model.json): renaming
//! or reordering one makes an older model fail its schema check, as it should.

/// Declares a feature enum `$name` with `ALL` (vector order), `NAMES` and `name()`.
macro_rules! feature_set {
    ($(#[$m:meta])* $vis:vis enum $name:ident { $($(#[$vm:meta])* $var:ident => $text:literal,)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(usize)]
        $vis enum $name { $($(#[$vm])* $var,)* }

        impl $name {
            /// Every feature, in vector order.
            pub const ALL: &'static [$name] = &[$($name::$var,)*];
            /// Their names, in vector order.
            pub const NAMES: &'static [&'static str] = &[$($text,)*];

            pub const fn name(self) -> &'static str {
                Self::NAMES[self as usize]
            }
        }

        impl std::ops::Index<$name> for [f32] {
            type Output = f32;
            fn index(&self, f: $name) -> &f32 {
                &self[f as usize]
            }
        }

        impl std::ops::IndexMut<$name> for [f32] {
            fn index_mut(&mut self, f: $name) -> &mut f32 {
                &mut self[f as usize]
            }
        }
    };
}

pub(crate) use feature_set;
