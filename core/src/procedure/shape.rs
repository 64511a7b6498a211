//! The TypeScript shape of a procedure's types, for clients that want them.
//!
//! [`Shape`] bounds every input, output, event and return type of a procedure. Without the
//! `typescript` feature every type has it, and a procedure records nothing. With it, `Shape`
//! is `ts_rs::TS` (derive it with `#[derive(ts_rs::TS)]`, which reads the serde attributes), and
//! each procedure keeps a [`Signature`]: what [`crate::typescript`] writes the clients' types
//! from. The bound is a trait of its own so that code generic over procedure types (a router
//! over any publisher) can name it whether the feature is on or not.

/// A type a procedure takes or sends. Every type has it without the `typescript` feature;
/// with it, the types that implement `ts_rs::TS`.
#[cfg(not(feature = "typescript"))]
pub trait Shape {}

#[cfg(not(feature = "typescript"))]
impl<T: ?Sized> Shape for T {}

/// A type a procedure takes or sends: with the `typescript` feature, one with a TypeScript
/// shape (`ts_rs::TS`).
#[cfg(feature = "typescript")]
pub trait Shape: ts_rs::TS + 'static {}

#[cfg(feature = "typescript")]
impl<T: ts_rs::TS + 'static + ?Sized> Shape for T {}

/// The types of one procedure, as TypeScript knows them: recorded by the builder.
#[cfg(feature = "typescript")]
#[derive(Clone, Debug)]
pub struct Signature {
    pub(crate) input: TypeRef,
    /// A query's or mutation's answer; a subscription's events.
    pub(crate) output: TypeRef,
    /// A subscription's return value.
    pub(crate) returns: Option<TypeRef>,
    /// Whether every event of a subscription carries an id.
    pub(crate) tracked: bool,
    /// The errors it declares ([`ProcedureBuilder::declares`](super::ProcedureBuilder::declares)).
    pub(crate) errors: crate::sync::Arc<[super::declared::DeclaredError]>,
}

#[cfg(feature = "typescript")]
impl Signature {
    pub(crate) fn unary<I: Shape, O: Shape>(
        errors: crate::sync::Arc<[super::declared::DeclaredError]>,
    ) -> Self {
        Self {
            input: TypeRef::of::<I>(),
            output: TypeRef::of::<O>(),
            returns: None,
            tracked: false,
            errors,
        }
    }

    pub(crate) fn stream<I: Shape, T: Shape, R: Shape>(
        tracked: bool,
        errors: crate::sync::Arc<[super::declared::DeclaredError]>,
    ) -> Self {
        Self {
            input: TypeRef::of::<I>(),
            output: TypeRef::of::<T>(),
            returns: Some(TypeRef::of::<R>()),
            tracked,
            errors,
        }
    }
}

/// One type, through the functions ts-rs gives it.
#[cfg(feature = "typescript")]
#[derive(Clone, Copy)]
pub(crate) struct TypeRef {
    /// Its name where it is used: `Post`, `Array<Post>`, `number | null`.
    pub(crate) name: fn(&ts_rs::Config) -> alloc::string::String,
    /// Its definition written out: `{ n: number, }` for a struct.
    pub(crate) inline: fn(&ts_rs::Config) -> alloc::string::String,
    /// Declares it and the named types it uses.
    pub(crate) declare: fn(&mut crate::typescript::Declarations),
}

#[cfg(feature = "typescript")]
impl TypeRef {
    pub(crate) fn of<T: Shape>() -> Self {
        Self {
            name: T::name,
            inline: T::inline,
            declare: crate::typescript::Declarations::add::<T>,
        }
    }
}

#[cfg(feature = "typescript")]
impl core::fmt::Debug for TypeRef {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str((self.name)(&ts_rs::Config::default()).as_str())
    }
}
