//! A minimal bitflags: a newtype over an integer with named constants and `|`.

macro_rules! flags {
    ($(#[$m:meta])* pub struct $name:ident: $ty:ty { $($(#[$cm:meta])* const $c:ident = $v:expr;)* }) => {
        $(#[$m])*
        #[derive(Copy, Clone, PartialEq, Eq, Debug, Default)]
        pub struct $name(pub $ty);
        impl $name {
            pub const EMPTY: $name = $name(0);
            $($(#[$cm])* pub const $c: $name = $name($v as $ty);)*
            /// The raw bits.
            pub const fn bits(self) -> $ty { self.0 }
            /// Whether every bit of `other` is set.
            pub const fn contains(self, other: $name) -> bool { self.0 & other.0 == other.0 }
        }
        impl core::ops::BitOr for $name {
            type Output = $name;
            fn bitor(self, rhs: $name) -> $name { $name(self.0 | rhs.0) }
        }
        impl core::ops::BitOrAssign for $name {
            fn bitor_assign(&mut self, rhs: $name) { self.0 |= rhs.0 }
        }
    };
}
