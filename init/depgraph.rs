//! Start order of the units from their After=/Before=/Requires=/Wants= (pure, host-tested).
//!
//! As in systemd, only After= and Before= order; Requires= and Wants= do not order by
//! themselves. Every unit present is started at boot, so Wants= only matters when a unit is
//! started by hand (the runtime pulls its wants in); Requires= also makes the dependant fail
//! when the required unit fails or is stopped.
//!
//! [`Plan::build`] resolves the names once into index sets and a start order, reporting:
//! - a Requires= on a service that does not exist: the dependant fails with that reason
//!   ([`Readiness::MissingRequirement`]);
//! - an After=/Before=/Wants= on a missing unit, or any dependency on a unit type autoinit
//!   does not have (`network.target`, `dbus.socket`): ignored, with a warning or a debug line;
//! - an ordering cycle: broken at a deterministic edge (the lowest-numbered unit of the cycle
//!   loses its After= on the next unit of the cycle), both units reported;
//! - two units with the same name: the first one is the dependency target.
//!
//! The runtime then asks [`ready_to_start`] for each waiting unit whenever a unit changes
//! state, and [`ready_to_stop`] at shutdown. Unit names compare without a `.service` suffix.

/// Most units autoinit supervises.
pub const MAX_UNITS: usize = 128;

/// A set of unit indices below [`MAX_UNITS`].
#[derive(Copy, Clone, PartialEq, Eq, Default, Debug)]
pub struct UnitSet([u64; 2]);

impl UnitSet {
    pub const EMPTY: UnitSet = UnitSet([0; 2]);

    fn word_bit(unit: usize) -> Option<(usize, u64)> {
        (unit < MAX_UNITS).then(|| (unit / 64, 1u64 << (unit % 64)))
    }

    /// Adds `unit`; an index of [`MAX_UNITS`] or more is ignored.
    pub fn insert(&mut self, unit: usize) {
        if let Some((w, bit)) = Self::word_bit(unit)
            && let Some(word) = self.0.get_mut(w)
        {
            *word |= bit;
        }
    }

    pub fn remove(&mut self, unit: usize) {
        if let Some((w, bit)) = Self::word_bit(unit)
            && let Some(word) = self.0.get_mut(w)
        {
            *word &= !bit;
        }
    }

    pub fn contains(&self, unit: usize) -> bool {
        Self::word_bit(unit)
            .is_some_and(|(w, bit)| self.0.get(w).is_some_and(|word| word & bit != 0))
    }

    pub fn is_empty(&self) -> bool {
        self.0 == [0; 2]
    }

    pub fn len(&self) -> usize {
        self.0.iter().map(|w| w.count_ones() as usize).sum()
    }

    pub fn intersection(&self, other: &UnitSet) -> UnitSet {
        let [a, b] = self.0;
        let [c, d] = other.0;
        UnitSet([a & c, b & d])
    }

    /// The lowest index in the set.
    pub fn first(&self) -> Option<usize> {
        let [a, b] = self.0;
        if a != 0 {
            Some(a.trailing_zeros() as usize)
        } else if b != 0 {
            Some(64usize.saturating_add(b.trailing_zeros() as usize))
        } else {
            None
        }
    }

    /// The indices in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = usize> + use<> {
        let mut rest = *self;
        core::iter::from_fn(move || {
            let first = rest.first()?;
            rest.remove(first);
            Some(first)
        })
    }
}

/// A kind of dependency a unit lists.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum DepKind {
    After,
    Before,
    Requires,
    Wants,
}

/// The units as the runtime holds them, by index `0..count()`.
pub trait Units {
    fn count(&self) -> usize;
    fn name(&self, unit: usize) -> &str;
    /// Calls `each` with every name `unit` lists under `kind`.
    fn deps<'s>(&'s self, unit: usize, kind: DepKind, each: &mut dyn FnMut(&'s str));
}

/// A unit's name and dependencies as plain lists (for tests and simple callers).
#[derive(Copy, Clone, Debug, Default)]
pub struct UnitSpec<'a> {
    pub name: &'a str,
    pub after: &'a [&'a str],
    pub before: &'a [&'a str],
    pub requires: &'a [&'a str],
    pub wants: &'a [&'a str],
}

impl Units for [UnitSpec<'_>] {
    fn count(&self) -> usize {
        self.len()
    }

    fn name(&self, unit: usize) -> &str {
        self.get(unit).map_or("", |u| u.name)
    }

    fn deps<'s>(&'s self, unit: usize, kind: DepKind, each: &mut dyn FnMut(&'s str)) {
        let Some(u) = self.get(unit) else { return };
        let list = match kind {
            DepKind::After => u.after,
            DepKind::Before => u.before,
            DepKind::Requires => u.requires,
            DepKind::Wants => u.wants,
        };
        for name in list {
            each(name);
        }
    }
}

/// How much a [`Diagnostic`] matters.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Severity {
    /// Expected with systemd unit files (`After=network.target`).
    Debug,
    Warning,
    /// The unit cannot start.
    Error,
}

/// Something worth a log line, found while building a [`Plan`].
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Diagnostic<'a> {
    /// `unit` lists `name` under `kind`, and no unit has that name.
    Missing { unit: usize, kind: DepKind, name: &'a str },
    /// An ordering cycle: `unit` no longer waits for `after` (its After=, or the other's
    /// Before=). `unit == after` for a unit ordered after itself.
    Cycle { unit: usize, after: usize },
    /// `unit` has the name of unit `first`, which is the one dependencies refer to.
    DuplicateName { unit: usize, first: usize },
}

impl Diagnostic<'_> {
    pub fn severity(&self) -> Severity {
        match self {
            Diagnostic::Missing { name, .. } if !is_service_name(name) => Severity::Debug,
            Diagnostic::Missing { kind: DepKind::Requires, .. } => Severity::Error,
            Diagnostic::Missing { .. } | Diagnostic::Cycle { .. } => Severity::Warning,
            Diagnostic::DuplicateName { .. } => Severity::Warning,
        }
    }
}

/// More units than [`MAX_UNITS`].
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct TooManyUnits;

/// systemd unit types other than services, which autoinit does not have.
const OTHER_UNIT_TYPES: [&str; 10] = [
    ".target",
    ".socket",
    ".mount",
    ".automount",
    ".device",
    ".path",
    ".timer",
    ".slice",
    ".scope",
    ".swap",
];

/// Whether `name` can be one of autoinit's units (not `network.target`, `dbus.socket`...).
pub fn is_service_name(name: &str) -> bool {
    !OTHER_UNIT_TYPES.iter().any(|t| name.ends_with(t))
}

fn bare(name: &str) -> &str {
    name.strip_suffix(".service").unwrap_or(name)
}

/// The first unit called `name` (with or without `.service`).
pub fn find<U: Units + ?Sized>(units: &U, name: &str) -> Option<usize> {
    let name = bare(name);
    (0..units.count().min(MAX_UNITS)).find(|&i| bare(units.name(i)) == name)
}

/// The resolved dependencies and the start order: about 6 KiB, so keep one in static storage
/// and [`rebuild`](Plan::rebuild) it in place on `reload`.
#[derive(Clone, Debug)]
pub struct Plan {
    len: usize,
    /// Unit indices, each after every unit it is ordered after.
    order: heapless::Vec<u8, MAX_UNITS>,
    /// Per unit, the units it starts after (After= and the others' Before=, cycles broken).
    after: [UnitSet; MAX_UNITS],
    requires: [UnitSet; MAX_UNITS],
    wants: [UnitSet; MAX_UNITS],
    /// Units with a Requires= on a service that does not exist.
    missing_requires: UnitSet,
}

impl Default for Plan {
    fn default() -> Self {
        Self::new()
    }
}

/// What [`ready_to_start`] decides for a waiting unit.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Readiness {
    /// A unit it is ordered after is still pending or starting.
    Wait,
    Go,
    /// This required unit failed or is stopped: the unit fails too.
    Fail(usize),
    /// It requires a service that does not exist ([`Plan::missing_requirement`] names it).
    MissingRequirement,
}

/// A unit's state as far as the order is concerned.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum DepState {
    /// Waiting for its turn to start.
    Pending,
    /// Started, not ready yet (a notify service before READY=1, a oneshot still running).
    Starting,
    /// Running and ready; also a oneshot that finished successfully.
    Started,
    Failed,
    /// Stopped, stopping, or never asked to start.
    Inactive,
}

impl Plan {
    pub const fn new() -> Plan {
        Plan {
            len: 0,
            order: heapless::Vec::new(),
            after: [UnitSet::EMPTY; MAX_UNITS],
            requires: [UnitSet::EMPTY; MAX_UNITS],
            wants: [UnitSet::EMPTY; MAX_UNITS],
            missing_requires: UnitSet::EMPTY,
        }
    }

    /// Resolves `units`; `report` gets each [`Diagnostic`].
    pub fn build<'u, U: Units + ?Sized>(
        units: &'u U,
        report: impl FnMut(Diagnostic<'u>),
    ) -> Result<Plan, TooManyUnits> {
        let mut plan = Plan::new();
        plan.rebuild(units, report)?;
        Ok(plan)
    }

    /// Like [`build`](Plan::build), in place. On error the plan is left empty.
    pub fn rebuild<'u, U: Units + ?Sized>(
        &mut self,
        units: &'u U,
        mut report: impl FnMut(Diagnostic<'u>),
    ) -> Result<(), TooManyUnits> {
        *self = Plan::new();
        let n = units.count();
        if n > MAX_UNITS {
            return Err(TooManyUnits);
        }
        self.len = n;
        for unit in 0..n {
            if let Some(first) = find(units, units.name(unit)).filter(|&f| f != unit) {
                report(Diagnostic::DuplicateName { unit, first });
            }
        }
        for unit in 0..n {
            self.resolve(units, unit, &mut report);
        }
        self.sort(&mut report);
        Ok(())
    }

    fn resolve<'u, U: Units + ?Sized>(
        &mut self,
        units: &'u U,
        unit: usize,
        report: &mut impl FnMut(Diagnostic<'u>),
    ) {
        for kind in [DepKind::After, DepKind::Before, DepKind::Requires, DepKind::Wants] {
            units.deps(unit, kind, &mut |name| {
                let Some(target) = find(units, name) else {
                    if kind == DepKind::Requires && is_service_name(name) {
                        self.missing_requires.insert(unit);
                    }
                    report(Diagnostic::Missing { unit, kind, name });
                    return;
                };
                let set = match kind {
                    DepKind::After => self.after.get_mut(unit),
                    DepKind::Before => self.after.get_mut(target),
                    // A unit trivially has itself.
                    DepKind::Requires | DepKind::Wants if target == unit => None,
                    DepKind::Requires => self.requires.get_mut(unit),
                    DepKind::Wants => self.wants.get_mut(unit),
                };
                let other = if kind == DepKind::Before { unit } else { target };
                if let Some(set) = set {
                    set.insert(other);
                }
            });
        }
    }

    /// Kahn's algorithm, always taking the lowest-numbered unit that is free to go, so the
    /// order is the units' own order wherever the dependencies allow.
    fn sort<'u>(&mut self, report: &mut impl FnMut(Diagnostic<'u>)) {
        let mut remaining = UnitSet::EMPTY;
        for unit in 0..self.len {
            remaining.insert(unit);
        }
        // Every round removes a unit or an edge; this bound is never reached.
        let rounds = MAX_UNITS.saturating_mul(MAX_UNITS.saturating_add(1));
        for _ in 0..rounds {
            if remaining.is_empty() {
                return;
            }
            let free = remaining
                .iter()
                .find(|&u| self.after.get(u).is_none_or(|a| a.intersection(&remaining).is_empty()));
            match free {
                Some(unit) => {
                    remaining.remove(unit);
                    if let Ok(index) = u8::try_from(unit) {
                        let _ = self.order.push(index);
                    }
                }
                None => match self.break_cycle(&remaining) {
                    Some((unit, after)) => report(Diagnostic::Cycle { unit, after }),
                    None => return,
                },
            }
        }
    }

    /// Every remaining unit waits for another remaining one, so walking from one to the
    /// lowest-numbered unit it waits for must come back to a unit already seen: a cycle.
    /// Removes the edge from the cycle's lowest-numbered unit and returns it.
    fn break_cycle(&mut self, remaining: &UnitSet) -> Option<(usize, usize)> {
        let mut path: heapless::Vec<usize, MAX_UNITS> = heapless::Vec::new();
        let mut seen = UnitSet::EMPTY;
        let mut unit = remaining.first()?;
        loop {
            seen.insert(unit);
            path.push(unit).ok()?;
            let next = self.after.get(unit)?.intersection(remaining).first()?;
            if seen.contains(next) {
                let start = path.iter().position(|&u| u == next)?;
                let cycle = path.get(start..)?;
                let (i, &lowest) = cycle.iter().enumerate().min_by_key(|&(_, &u)| u)?;
                let waits_for = cycle.get(i.saturating_add(1)).copied().unwrap_or(next);
                self.after.get_mut(lowest)?.remove(waits_for);
                return Some((lowest, waits_for));
            }
            unit = next;
        }
    }

    /// Number of units planned.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Unit indices in start order; stop in the reverse order.
    pub fn order(&self) -> &[u8] {
        &self.order
    }

    /// The units `unit` starts after (cycles broken).
    pub fn after(&self, unit: usize) -> UnitSet {
        self.after.get(unit).copied().unwrap_or_default()
    }

    pub fn requires(&self, unit: usize) -> UnitSet {
        self.requires.get(unit).copied().unwrap_or_default()
    }

    pub fn wants(&self, unit: usize) -> UnitSet {
        self.wants.get(unit).copied().unwrap_or_default()
    }

    /// The units that require `unit`: to stop (or fail) when it fails or is stopped.
    pub fn required_by(&self, unit: usize) -> UnitSet {
        let mut set = UnitSet::EMPTY;
        for (u, requires) in self.requires.iter().take(self.len).enumerate() {
            if requires.contains(unit) {
                set.insert(u);
            }
        }
        set
    }

    /// The first Requires= of `unit` that names no unit, for the failure's reason.
    pub fn missing_requirement<'u, U: Units + ?Sized>(
        &self,
        units: &'u U,
        unit: usize,
    ) -> Option<&'u str> {
        if !self.missing_requires.contains(unit) {
            return None;
        }
        let mut missing = None;
        units.deps(unit, DepKind::Requires, &mut |name| {
            if missing.is_none() && is_service_name(name) && find(units, name).is_none() {
                missing = Some(name);
            }
        });
        missing
    }
}

/// Whether waiting unit `unit` may start now. A failed or stopped requirement fails it
/// before anything else; then it waits while a unit it is ordered after is pending or
/// starting (a failed one does not hold it back, as in systemd). The runtime marks a unit's
/// requirements and wants Pending before asking, when the unit is started by hand.
pub fn ready_to_start(plan: &Plan, unit: usize, state_of: impl Fn(usize) -> DepState) -> Readiness {
    if plan.missing_requires.contains(unit) {
        return Readiness::MissingRequirement;
    }
    if let Some(failed) = plan
        .requires(unit)
        .iter()
        .find(|&r| matches!(state_of(r), DepState::Failed | DepState::Inactive))
    {
        return Readiness::Fail(failed);
    }
    if plan
        .after(unit)
        .iter()
        .any(|a| matches!(state_of(a), DepState::Pending | DepState::Starting))
    {
        return Readiness::Wait;
    }
    Readiness::Go
}

/// Whether `unit` may be stopped now at shutdown: every unit ordered after it has stopped
/// (Inactive or Failed) first, the reverse of the start order.
pub fn ready_to_stop(plan: &Plan, unit: usize, state_of: impl Fn(usize) -> DepState) -> bool {
    (0..plan.len())
        .filter(|&u| plan.after(u).contains(unit))
        .all(|u| matches!(state_of(u), DepState::Inactive | DepState::Failed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec<'a>(name: &'a str, after: &'a [&'a str]) -> UnitSpec<'a> {
        UnitSpec { name, after, ..UnitSpec::default() }
    }

    fn plan_of<'u>(units: &'u [UnitSpec<'u>]) -> (Plan, Vec<Diagnostic<'u>>) {
        let mut diags = Vec::new();
        let plan = Plan::build(units, |d| diags.push(d)).unwrap();
        assert_valid(&plan);
        (plan, diags)
    }

    /// Every unit once, each after all it is ordered after.
    fn assert_valid(plan: &Plan) {
        let order: Vec<usize> = plan.order().iter().map(|&u| u as usize).collect();
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(sorted, (0..plan.len()).collect::<Vec<_>>());
        for (pos, &u) in order.iter().enumerate() {
            for a in plan.after(u).iter() {
                let apos = order.iter().position(|&x| x == a).unwrap();
                assert!(apos < pos, "{u} is before {a}, which it is ordered after");
            }
        }
    }

    #[test]
    fn unit_sets() {
        let mut s = UnitSet::EMPTY;
        assert!(s.is_empty() && s.first().is_none());
        for u in [127, 0, 64, 63, 5] {
            s.insert(u);
        }
        s.insert(128);
        s.insert(usize::MAX);
        assert!(!s.contains(128) && !s.contains(usize::MAX));
        assert_eq!(s.iter().collect::<Vec<_>>(), [0, 5, 63, 64, 127]);
        assert_eq!(s.len(), 5);
        s.remove(0);
        s.remove(999);
        assert_eq!(s.first(), Some(5));
        let mut t = UnitSet::EMPTY;
        t.insert(64);
        t.insert(1);
        assert_eq!(s.intersection(&t).iter().collect::<Vec<_>>(), [64]);
        s.remove(5);
        s.remove(63);
        assert_eq!(s.first(), Some(64));
    }

    #[test]
    fn a_chain_starts_in_dependency_order() {
        let units = [spec("web", &["db.service"]), spec("db", &["log"]), spec("log", &[])];
        let (plan, diags) = plan_of(&units);
        assert_eq!(plan.order(), [2, 1, 0]);
        assert!(diags.is_empty());
        assert_eq!(plan.after(0).iter().collect::<Vec<_>>(), [1]);
    }

    #[test]
    fn free_units_keep_their_own_order() {
        let units = [spec("a", &[]), spec("b", &["d"]), spec("c", &[]), spec("d", &[])];
        assert_eq!(plan_of(&units).0.order(), [0, 2, 3, 1]);
    }

    #[test]
    fn before_orders_like_after_the_other_way() {
        let units = [
            spec("app", &[]),
            UnitSpec { name: "setup.service", before: &["app.service"], ..UnitSpec::default() },
        ];
        let (plan, diags) = plan_of(&units);
        assert_eq!(plan.order(), [1, 0]);
        assert!(plan.after(0).contains(1));
        assert!(diags.is_empty());
    }

    #[test]
    fn requires_and_wants_do_not_order() {
        let units = [
            UnitSpec { name: "a", requires: &["b"], wants: &["c", "a"], ..UnitSpec::default() },
            UnitSpec { name: "b", requires: &["b"], ..UnitSpec::default() },
            spec("c", &[]),
        ];
        let (plan, diags) = plan_of(&units);
        assert_eq!(plan.order(), [0, 1, 2]);
        assert!(diags.is_empty());
        assert_eq!(plan.requires(0).iter().collect::<Vec<_>>(), [1]);
        assert_eq!(plan.wants(0).iter().collect::<Vec<_>>(), [2]);
        // A unit listing itself gets nothing from it.
        assert!(plan.requires(1).is_empty());
        assert_eq!(plan.required_by(1).iter().collect::<Vec<_>>(), [0]);
        assert!(plan.required_by(0).is_empty());
        assert!(plan.after(0).is_empty());
    }

    #[test]
    fn missing_units() {
        let units = [
            UnitSpec {
                name: "app",
                after: &["network.target", "nosuch"],
                requires: &["dbus.socket", "ghost.service", "ghost2"],
                wants: &["gone"],
                before: &["multi-user.target"],
            },
            spec("ok", &[]),
        ];
        let (plan, diags) = plan_of(&units);
        let got: Vec<_> = diags.iter().map(|d| (*d, d.severity())).collect();
        use DepKind::*;
        use Severity::*;
        let missing = |kind, name| Diagnostic::Missing { unit: 0, kind, name };
        assert_eq!(
            got,
            [
                (missing(After, "network.target"), Debug),
                (missing(After, "nosuch"), Warning),
                (missing(Before, "multi-user.target"), Debug),
                (missing(Requires, "dbus.socket"), Debug),
                (missing(Requires, "ghost.service"), Error),
                (missing(Requires, "ghost2"), Error),
                (missing(Wants, "gone"), Warning),
            ]
        );
        assert_eq!(plan.order(), [0, 1]);
        assert_eq!(plan.missing_requirement(&units[..], 0), Some("ghost.service"));
        assert_eq!(plan.missing_requirement(&units[..], 1), None);
        assert_eq!(ready_to_start(&plan, 0, |_| DepState::Started), Readiness::MissingRequirement);
        assert_eq!(ready_to_start(&plan, 1, |_| DepState::Pending), Readiness::Go);
    }

    #[test]
    fn a_cycle_is_broken_at_its_lowest_unit() {
        let units = [spec("a", &["b"]), spec("b", &["c"]), spec("c", &["a"])];
        let (plan, diags) = plan_of(&units);
        assert_eq!(diags, [Diagnostic::Cycle { unit: 0, after: 1 }]);
        assert_eq!(plan.order(), [0, 2, 1]);
        assert!(plan.after(0).is_empty());
    }

    #[test]
    fn cycles_behind_other_units_and_self_loops() {
        // x waits for the cycle b <-> c; s is ordered after itself; d waits for x.
        let units = [
            spec("x", &["c"]),
            spec("b", &["c"]),
            spec("c", &["b"]),
            UnitSpec { name: "s", before: &["s"], ..UnitSpec::default() },
            spec("d", &["x", "s"]),
        ];
        let (plan, diags) = plan_of(&units);
        assert_eq!(
            diags,
            [Diagnostic::Cycle { unit: 1, after: 2 }, Diagnostic::Cycle { unit: 3, after: 3 }]
        );
        assert_eq!(plan.order(), [1, 2, 0, 3, 4]);
        // The same input always breaks the same edges.
        let (again, diags_again) = plan_of(&units);
        assert_eq!((again.order(), diags_again), (plan.order(), diags));
    }

    #[test]
    fn duplicate_names_refer_to_the_first() {
        let units = [spec("a", &[]), spec("a.service", &[]), spec("b", &["a"])];
        let (plan, diags) = plan_of(&units);
        assert_eq!(diags, [Diagnostic::DuplicateName { unit: 1, first: 0 }]);
        assert_eq!(plan.after(2).iter().collect::<Vec<_>>(), [0]);
        assert_eq!(diags[0].severity(), Severity::Warning);
        assert_eq!(find(&units[..], "a.service"), Some(0));
        assert_eq!(find(&units[..], "b.service"), Some(2));
        assert_eq!(find(&units[..], "c"), None);
    }

    #[test]
    fn capacity() {
        let names: Vec<String> = (0..=MAX_UNITS).map(|i| format!("u{i}")).collect();
        let afters: Vec<[&str; 1]> = (0..=MAX_UNITS)
            .map(|i| [names.get(i + 1).map_or("none.target", |s| s.as_str())])
            .collect();
        let units: Vec<UnitSpec> =
            (0..=MAX_UNITS).map(|i| spec(&names[i], &afters[i][..])).collect();
        assert_eq!(Plan::build(&units[..], |_| {}).err(), Some(TooManyUnits));
        // 128 units, each after the next one: the order is reversed.
        let units = &units[..MAX_UNITS];
        let mut diags = Vec::new();
        let mut plan = Plan::new();
        plan.rebuild(units, |d| diags.push(d)).unwrap();
        assert_valid(&plan);
        let expected: Vec<u8> = (0..MAX_UNITS as u8).rev().collect();
        assert_eq!(plan.order(), expected);
        // u127 names u128, which is not planned.
        assert_eq!(diags, [Diagnostic::Missing { unit: 127, kind: DepKind::After, name: "u128" }]);
        // A failed rebuild leaves the plan empty.
        let all: Vec<UnitSpec> = (0..=MAX_UNITS).map(|_| spec("x", &[])).collect();
        assert_eq!(plan.rebuild(&all[..], |_| {}), Err(TooManyUnits));
        assert!(plan.is_empty() && plan.order().is_empty());
    }

    #[test]
    fn readiness() {
        use DepState::*;
        // 0 requires and is after 1; 0 is after 2; 0 requires 3 without ordering.
        let units = [
            UnitSpec {
                name: "app",
                after: &["db", "net"],
                requires: &["db", "cfg"],
                ..Default::default()
            },
            spec("db", &[]),
            spec("net", &[]),
            spec("cfg", &[]),
        ];
        let (plan, _) = plan_of(&units);
        let ready = |states: [DepState; 4]| ready_to_start(&plan, 0, |u| states[u]);
        assert_eq!(ready([Pending, Pending, Pending, Pending]), Readiness::Wait);
        assert_eq!(ready([Pending, Started, Starting, Pending]), Readiness::Wait);
        assert_eq!(ready([Pending, Started, Started, Pending]), Readiness::Go);
        // A failed After= target does not hold the unit back; a failed requirement fails it,
        // even while other units are still pending.
        assert_eq!(ready([Pending, Started, Failed, Starting]), Readiness::Go);
        assert_eq!(ready([Pending, Failed, Pending, Pending]), Readiness::Fail(1));
        assert_eq!(ready([Pending, Started, Pending, Inactive]), Readiness::Fail(3));
        // Out-of-range units ask about nothing.
        assert_eq!(ready_to_start(&plan, 500, |_| Failed), Readiness::Go);

        let stop = |unit, states: [DepState; 4]| ready_to_stop(&plan, unit, |u| states[u]);
        assert!(!stop(1, [Started, Started, Started, Started]));
        assert!(!stop(2, [Starting, Started, Started, Started]));
        assert!(stop(1, [Inactive, Started, Started, Started]));
        assert!(stop(2, [Failed, Started, Started, Started]));
        assert!(stop(0, [Started, Started, Started, Started]));
        assert!(stop(3, [Started, Started, Started, Started]));
    }

    #[test]
    fn random_graphs_always_give_a_valid_order() {
        let names: Vec<String> = (0..40).map(|i| format!("n{i}")).collect();
        let mut seed = 0x0123_4567_89ab_cdefu64;
        let mut rand = move |m: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % m) as usize
        };
        for _ in 0..300 {
            let n = 1 + rand(40);
            let lists: Vec<Vec<Vec<&str>>> = (0..n)
                .map(|_| {
                    (0..4)
                        .map(|_| (0..rand(4)).map(|_| names[rand(45).min(39)].as_str()).collect())
                        .collect()
                })
                .collect();
            let units: Vec<UnitSpec> = (0..n)
                .map(|i| UnitSpec {
                    name: &names[i],
                    after: &lists[i][0],
                    before: &lists[i][1],
                    requires: &lists[i][2],
                    wants: &lists[i][3],
                })
                .collect();
            let mut cycles = 0;
            let plan = Plan::build(&units[..], |d| {
                if let Diagnostic::Cycle { unit, after } = d {
                    assert!(unit < n && after < n);
                    cycles += 1;
                }
            })
            .unwrap();
            assert_valid(&plan);
            for u in 0..n {
                let _ = ready_to_start(&plan, u, |x| [DepState::Pending, DepState::Failed][x % 2]);
                let _ = ready_to_stop(&plan, u, |_| DepState::Started);
                let _ = plan.missing_requirement(&units[..], u);
            }
        }
    }
}
