//! TypeScript for the clients, from the router: an oRPC contract for `@orpc/contract` and a
//! tRPC `AppRouter` type for `@trpc/client`, with every procedure's input, output, event and
//! return type as serde puts them on the wire (through `ts_rs`, which reads serde's
//! attributes). Needs the `typescript` feature.
//!
//! The shapes come from `ts_rs::TS`, derived beside serde's derives. ts-rs rather than specta:
//! ts-rs is stable (12.x) and reads serde's attributes (renames, `rename_all`, `skip`,
//! `skip_serializing_if` with `default`, `flatten`, every enum representation), while specta's
//! 2.0 is still a release candidate; and ts-rs lets the exporter choose how 64-bit integers
//! read, below.
//!
//! 64-bit integers (`u64`, `i64`, and what serializes through them, such as
//! [`SeqId`](crate::publisher::SeqId)) are typed `number`: serde writes them as JSON numbers
//! and `JSON.parse` reads those as doubles, exact up to 2^53. A value that may pass it should
//! travel as a string (`#[serde(with = ...)]` and `#[ts(type = "string")]`) to arrive intact.
//!
//! ```
//! use outer_core::{procedure, typescript, Router};
//!
//! #[derive(serde::Deserialize, ts_rs::TS)]
//! struct Ping { n: i32 }
//! #[derive(serde::Serialize, ts_rs::TS)]
//! struct Pong { n: i32 }
//!
//! let router = Router::new()
//!     .route("ping", procedure::<()>().input::<Ping>().query(|req| async move { Ok(Pong { n: req.input.n }) }));
//! let orpc = typescript::orpc_contract(&router).unwrap();
//! assert!(orpc.contains("export type Ping = { n: number, };"));
//! assert!(orpc.contains("ping: oc.input(type<Ping>()).output(type<Pong>()),"));
//! let trpc = typescript::trpc_router(&router).unwrap();
//! assert!(trpc.contains("export type AppRouter ="));
//! ```

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::any::TypeId;
use core::fmt;
use core::fmt::Write as _;

use ts_rs::{TypeVisitor, TS};

use crate::procedure::{ProcedureKind, Signature};
use crate::router::Router;

/// Why a router's TypeScript could not be written.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TypeScriptError {
    /// A procedure made with `Procedure::from_fn`, whose types are unknown.
    Untyped(String),
    /// Two Rust types with the same name: TypeScript has one namespace. Rename one
    /// (`#[ts(rename = "...")]`).
    SameName(String),
}

impl fmt::Display for TypeScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Untyped(path) => write!(
                f,
                "procedure \"{path}\" has no recorded types (made with Procedure::from_fn)"
            ),
            Self::SameName(name) => write!(
                f,
                "two different types are named {name}: rename one with #[ts(rename = \"...\")]"
            ),
        }
    }
}

impl core::error::Error for TypeScriptError {}

/// The named types a module declares, each once, in the order first met.
pub struct Declarations {
    cfg: ts_rs::Config,
    by_name: BTreeMap<String, TypeId>,
    visited: alloc::collections::BTreeSet<TypeId>,
    decls: Vec<String>,
    clash: Option<String>,
}

impl fmt::Debug for Declarations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Declarations")
            .field("names", &self.by_name.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Declarations {
    fn new() -> Self {
        Self {
            // JSON numbers are what a 64-bit integer arrives as: see the module docs.
            cfg: ts_rs::Config::new().with_large_int("number"),
            by_name: BTreeMap::new(),
            visited: alloc::collections::BTreeSet::new(),
            decls: Vec::new(),
            clash: None,
        }
    }

    /// Declares `T` if it has a declaration of its own (a struct or an enum), then the named
    /// types it uses.
    pub(crate) fn add<T: TS + 'static + ?Sized>(&mut self) {
        self.visit::<T>();
    }
}

impl TypeVisitor for Declarations {
    fn visit<T: TS + 'static + ?Sized>(&mut self) {
        // Each type once, named or not: types may refer to themselves (`serde_json::Value`
        // holds arrays of values), and ts-rs visits a type's parts through more than one path.
        if !self.visited.insert(TypeId::of::<T>()) {
            return;
        }
        // Named types are the ones ts-rs would write a file for; the rest (numbers, arrays,
        // options) are written inline where they are used.
        if T::output_path().is_some() {
            let name = T::ident(&self.cfg);
            match self.by_name.get(&name) {
                Some(seen) if *seen == TypeId::of::<T::WithoutGenerics>() => return,
                Some(_) => {
                    self.clash.get_or_insert(name);
                    return;
                }
                None => {
                    self.by_name
                        .insert(name, TypeId::of::<T::WithoutGenerics>());
                    self.decls.push(format!("export {}", T::decl(&self.cfg)));
                }
            }
        }
        T::visit_dependencies(self);
        T::visit_generics(self);
    }
}

/// One procedure with its dotted path split, for writing nested objects.
struct Entry<'a> {
    segments: Vec<&'a str>,
    kind: ProcedureKind,
    signature: Signature,
}

fn entries<Ctx>(router: &Router<Ctx>) -> Result<Vec<Entry<'_>>, TypeScriptError> {
    router
        .paths()
        .map(|path| {
            let procedure = router.get(path).map(|p| (p.kind(), p.signature()));
            match procedure {
                Some((kind, Some(signature))) => Ok(Entry {
                    segments: path.split('.').collect(),
                    kind,
                    signature: signature.clone(),
                }),
                _ => Err(TypeScriptError::Untyped(path.to_string())),
            }
        })
        .collect()
}

/// Declares every type the procedures use; the error if two share a name.
fn declarations(entries: &[Entry<'_>]) -> Result<Declarations, TypeScriptError> {
    let mut decls = Declarations::new();
    for entry in entries {
        let signature = &entry.signature;
        (signature.input.declare)(&mut decls);
        (signature.output.declare)(&mut decls);
        if let Some(returns) = &signature.returns {
            (returns.declare)(&mut decls);
        }
        for data in signature
            .errors
            .iter()
            .filter_map(|error| error.data.as_ref())
        {
            (data.declare)(&mut decls);
        }
    }
    match decls.clash.take() {
        Some(name) => Err(TypeScriptError::SameName(name)),
        None => Ok(decls),
    }
}

/// Writes `entries` as nested object members, one line per procedure, with `leaf` writing
/// each procedure's value. Entries come sorted by path, so a prefix's members are together.
fn nest(
    out: &mut String,
    entries: &[Entry<'_>],
    depth: usize,
    indent: &str,
    leaf: &dyn Fn(&Entry<'_>) -> String,
    separator: &str,
) {
    let mut i = 0;
    while i < entries.len() {
        let key = entries[i].segments[depth];
        let pad = indent.repeat(depth + 1);
        let group_end = entries[i..]
            .iter()
            .position(|e| e.segments[depth] != key)
            .map_or(entries.len(), |n| i + n);
        let group = &entries[i..group_end];
        if group.len() == 1 && group[0].segments.len() == depth + 1 {
            let _ = writeln!(out, "{pad}{key}: {}{separator}", leaf(&group[0]));
        } else {
            // A path is either a procedure or a prefix of others, never both.
            let _ = writeln!(out, "{pad}{key}: {{");
            nest(out, group, depth + 1, indent, leaf, separator);
            let _ = writeln!(out, "{pad}}}{separator}");
        }
        i = group_end;
    }
}

const HEADER: &str = "// Generated by Outer from the Rust router: do not edit; regenerate it.\n";

/// The input's name, or `None` for a procedure that takes none (`()`).
fn input_name(signature: &Signature, cfg: &ts_rs::Config) -> Option<String> {
    let name = (signature.input.name)(cfg);
    (name != "null").then_some(name)
}

/// An oRPC contract module: the named types, then `export const contract`, built with `oc`
/// from `@orpc/contract`, streams as `eventIterator(event, return)`, and each procedure's
/// declared errors ([`ProcedureBuilder::declares`](crate::ProcedureBuilder::declares)) as
/// `.errors({ CODE: { data } })`. A client typed `ContractRouterClient<typeof contract>` then
/// knows every procedure, and narrows a declared error with `isDefinedError`.
pub fn orpc_contract<Ctx>(router: &Router<Ctx>) -> Result<String, TypeScriptError> {
    let entries = entries(router)?;
    let decls = declarations(&entries)?;
    let cfg = &decls.cfg;
    let mut out = String::from(HEADER);
    out.push_str("import { eventIterator, oc, type } from '@orpc/contract'\n\n");
    for decl in &decls.decls {
        out.push_str(decl);
        out.push_str("\n\n");
    }
    let leaf = |entry: &Entry<'_>| {
        let signature = &entry.signature;
        // `void` rather than no `.input`: without one the input is `unknown`, and a client could
        // pass anything to a procedure that takes nothing.
        let input = input_name(signature, cfg).unwrap_or_else(|| String::from("void"));
        let mut value = String::from("oc");
        if !signature.errors.is_empty() {
            // The errors it declares, with their data: what `isDefinedError` narrows to.
            let errors: Vec<String> = signature
                .errors
                .iter()
                .map(|error| match &error.data {
                    Some(data) => {
                        format!("{}: {{ data: type<{}>() }}", error.code, (data.name)(cfg))
                    }
                    None => format!("{}: {{}}", error.code),
                })
                .collect();
            let _ = write!(value, ".errors({{ {} }})", errors.join(", "));
        }
        let _ = write!(value, ".input(type<{input}>())");
        let output = (signature.output.name)(cfg);
        match (&signature.returns, entry.kind) {
            (Some(returns), ProcedureKind::Subscription) => {
                let returns = (returns.name)(cfg);
                let _ = write!(
                    value,
                    ".output(eventIterator(type<{output}>(), type<{returns}>()))"
                );
            }
            _ => {
                let _ = write!(value, ".output(type<{output}>())");
            }
        }
        value
    };
    out.push_str("export const contract = {\n");
    nest(&mut out, &entries, 0, "  ", &leaf, ",");
    out.push_str("}\n");
    Ok(out)
}

/// A tRPC module exporting `type AppRouter`, types only, for `createTRPCClient<AppRouter>`:
/// queries, mutations and subscriptions with their inputs and outputs.
///
/// A subscription whose every event has an id (a publisher's, `backfilled`, `with_ids`)
/// delivers `Tracked<T>` (`{ id, data }`) to `onData`, as tRPC's `tracked()` does; one whose
/// events may lack an id (an `event_iterator`, `events`) delivers `T | Tracked<T>`, since tRPC's
/// client passes an event without an id as its data alone. A subscription with an object input,
/// or none, also takes tRPC's `lastEventId` in its input. tRPC's client has no place for a
/// subscription's return value.
pub fn trpc_router<Ctx>(router: &Router<Ctx>) -> Result<String, TypeScriptError> {
    let entries = entries(router)?;
    let decls = declarations(&entries)?;
    let cfg = &decls.cfg;
    let mut out = String::from(HEADER);
    out.push_str(
        "import type {\n  TRPCBuiltRouter,\n  TRPCDefaultErrorShape,\n  TRPCMutationProcedure,\n  \
         TRPCQueryProcedure,\n  TRPCSubscriptionProcedure,\n} from '@trpc/server'\n\n",
    );
    for decl in &decls.decls {
        out.push_str(decl);
        out.push_str("\n\n");
    }
    out.push_str(TRPC_HELPERS);
    let leaf = |entry: &Entry<'_>| {
        let signature = &entry.signature;
        let input = input_name(signature, cfg);
        let output = (signature.output.name)(cfg);
        match entry.kind {
            ProcedureKind::Query | ProcedureKind::Mutation => {
                let kind = if entry.kind == ProcedureKind::Query {
                    "Query"
                } else {
                    "Mutation"
                };
                let input = input.unwrap_or_else(|| String::from("void"));
                format!("{kind}<{input}, {output}>")
            }
            ProcedureKind::Subscription => {
                // tRPC's client puts `lastEventId` into an object input (or makes one).
                let input = match input {
                    None => String::from("Resume | void"),
                    Some(input) if (signature.input.inline)(cfg).starts_with('{') => {
                        format!("{input} & Resume")
                    }
                    Some(input) => input,
                };
                let event = if signature.tracked {
                    format!("Tracked<{output}>")
                } else {
                    format!("{output} | Tracked<{output}>")
                };
                format!("Subscription<{input}, {event}>")
            }
        }
    };
    out.push_str(
        "export type AppRouter = TRPCBuiltRouter<{ ctx: object, meta: object, errorShape: \
         TRPCDefaultErrorShape, transformer: false }, {\n",
    );
    nest(&mut out, &entries, 0, "  ", &leaf, ",");
    out.push_str("}>;\n");
    Ok(out)
}

/// The aliases the tRPC module's procedures are written with.
const TRPC_HELPERS: &str = "\
/** What a subscription takes besides its input: the id of the last event seen, to resume after. */
export type Resume = { lastEventId?: string | null, };

/** An event with an id, as the client gets it: like tRPC's `tracked(id, data)`. */
export type Tracked<T> = { id: string, data: T, };

type Query<I, O> = TRPCQueryProcedure<{ input: I, output: O, meta: object }>;
type Mutation<I, O> = TRPCMutationProcedure<{ input: I, output: O, meta: object }>;
type Subscription<I, E> = TRPCSubscriptionProcedure<{ input: I, output: AsyncIterable<E, void>, meta: object }>;

";

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeMap;
    use serde::Serialize;

    /// One of each thing serde can do to a value's shape.
    #[derive(Serialize, TS)]
    #[serde(rename_all = "camelCase")]
    struct Kitchen {
        user_id: u64,
        #[serde(rename = "label")]
        name: String,
        #[serde(skip)]
        #[allow(dead_code)]
        secret: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nickname: Option<String>,
        maybe: Option<i32>,
        tags: BTreeMap<String, i32>,
        list: Vec<Internal>,
        raw: serde_json::Value,
        number: serde_json::Number,
        external: External,
        internal: Internal,
        adjacent: Adjacent,
        untagged: Untagged,
    }

    #[derive(Serialize, serde::Deserialize, TS)]
    enum External {
        Unit,
        Tuple(i32),
        Struct { a: i32 },
    }

    #[derive(Serialize, TS)]
    #[serde(tag = "type", rename_all = "snake_case")]
    enum Internal {
        WithField { x: i32 },
        Bare,
    }

    #[derive(Serialize, TS)]
    #[serde(tag = "t", content = "c")]
    #[allow(dead_code)]
    enum Adjacent {
        A(i32),
        B,
    }

    #[derive(Serialize, TS)]
    #[serde(untagged)]
    #[allow(dead_code)]
    enum Untagged {
        N(i32),
        S(String),
    }

    fn kitchen() -> Kitchen {
        Kitchen {
            user_id: 9_007_199_254_740_993,
            name: "ann".into(),
            secret: "never sent".into(),
            nickname: None,
            maybe: Some(3),
            tags: BTreeMap::from([("a".into(), 1)]),
            list: alloc::vec![Internal::WithField { x: 1 }, Internal::Bare],
            raw: serde_json::json!({"any": [1, "thing", null]}),
            number: serde_json::Number::from(5),
            external: External::Struct { a: 1 },
            internal: Internal::Bare,
            adjacent: Adjacent::A(2),
            untagged: Untagged::S("s".into()),
        }
    }

    fn router() -> Router<()> {
        Router::new().route(
            "kitchen",
            crate::procedure::<()>()
                .input::<Option<External>>()
                .query(|_| async { Ok(kitchen()) }),
        )
    }

    #[test]
    fn types_follow_what_serde_writes() {
        let orpc = orpc_contract(&router()).unwrap();
        for expected in [
            // rename_all, rename, skip, an optional field, Option, a map, 64-bit as number
            "export type Kitchen = { userId: number, label: string, nickname?: string | null, \
             maybe: number | null, tags: { [key in string]: number }, list: Array<Internal>, raw: \
             JsonValue, number: number, external: External, internal: Internal, adjacent: \
             Adjacent, untagged: Untagged, };",
            "export type External = \"Unit\" | { \"Tuple\": number } | { \"Struct\": { a: number, } };",
            "export type Internal = { \"type\": \"with_field\", x: number, } | { \"type\": \"bare\" };",
            "export type Adjacent = { \"t\": \"A\", \"c\": number } | { \"t\": \"B\" };",
            "export type Untagged = number | string;",
            "kitchen: oc.input(type<External | null>()).output(type<Kitchen>()),",
        ] {
            assert!(orpc.contains(expected), "missing {expected}\nin:\n{orpc}");
        }
        // serde_json::Value's declaration comes along, declared once.
        assert_eq!(orpc.matches("export type JsonValue =").count(), 1, "{orpc}");
    }

    /// With `OUTER_TS_SAMPLE` set to a path, writes the types and a value serde serialized,
    /// typed by them, for `typescript/check.sh` to type-check: the types accept what serde
    /// actually writes.
    #[test]
    fn a_serialized_value_is_written_for_tsc_when_asked() {
        let Ok(path) = std::env::var("OUTER_TS_SAMPLE") else {
            return;
        };
        let mut module = orpc_contract(&router()).unwrap();
        let sample = serde_json::to_string_pretty(&kitchen()).unwrap();
        module.push_str(&format!("\nexport const sample: Kitchen = {sample}\n"));
        std::fs::write(path, module).unwrap();
    }
}
