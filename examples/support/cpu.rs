//! CPU time from `/proc`, for the benchmarks: of a process, of each thread
//! of this one, of every `postgres` process, and of the whole machine.
//! Times are clock ticks (1/100 s on Linux).
use std::collections::HashMap;

/// The id, command name and utime + stime of each process or thread under
/// `dir` (`/proc` or `/proc/<pid>/task`).
pub fn stats(dir: &str) -> impl Iterator<Item = (u32, String, u64)> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let id: u32 = entry.file_name().to_str()?.parse().ok()?;
            let (comm, ticks) =
                parse_stat(&std::fs::read_to_string(entry.path().join("stat")).ok()?)?;
            Some((id, comm, ticks))
        })
}

/// utime + stime of process `pid` (all its threads).
pub fn process_ticks(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| parse_stat(&stat))
        .map_or(0, |(_, ticks)| ticks)
}

/// utime + stime of each `postgres` process, by pid: a phase's share is
/// counted per process ([`Postgres::since`]), so that backends exiting
/// during the phase (another pool's, closing) do not subtract theirs.
#[derive(Default, Clone)]
pub struct Postgres(HashMap<u32, u64>);

impl Postgres {
    pub fn now() -> Self {
        Self(
            stats("/proc")
                .filter(|(_, comm, _)| comm == "postgres")
                .map(|(pid, _, ticks)| (pid, ticks))
                .collect(),
        )
    }

    /// Ticks spent since `before` by the processes alive now (a process
    /// started since counts whole). What a process spent before exiting
    /// during the phase is not seen.
    pub fn since(&self, before: &Self) -> u64 {
        self.0
            .iter()
            .map(|(pid, ticks)| ticks.saturating_sub(before.0.get(pid).copied().unwrap_or(0)))
            .sum()
    }
}

/// A `stat` file's command name and utime + stime.
fn parse_stat(stat: &str) -> Option<(String, u64)> {
    // The command name is between the first '(' and the last ')'.
    let (head, rest) = stat.rsplit_once(')')?;
    let comm = head.split_once('(')?.1.to_owned();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((comm, utime + stime))
}

/// The machine's CPU time so far, all cores together (`/proc/stat`).
#[derive(Default, Clone, Copy)]
pub struct Machine {
    /// Running anything: user, nice, system, irq, softirq.
    pub busy: u64,
    /// Idle or waiting for I/O.
    pub idle: u64,
    /// Taken by the hypervisor for other guests.
    pub steal: u64,
}

impl Machine {
    pub fn now() -> Self {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let Some(cpu) = stat.lines().find(|l| l.starts_with("cpu ")) else {
            return Self::default();
        };
        let f: Vec<u64> = cpu
            .split_whitespace()
            .skip(1)
            .map(|v| v.parse().unwrap_or(0))
            .collect();
        let at = |i: usize| f.get(i).copied().unwrap_or(0);
        Self {
            busy: at(0) + at(1) + at(2) + at(5) + at(6),
            idle: at(3) + at(4),
            steal: at(7),
        }
    }

    pub fn since(self, before: Self) -> Self {
        Self {
            busy: self.busy.saturating_sub(before.busy),
            idle: self.idle.saturating_sub(before.idle),
            steal: self.steal.saturating_sub(before.steal),
        }
    }

    /// Share of the machine's time spent running something, 0 to 1.
    pub fn busy_share(self) -> f64 {
        self.busy as f64 / (self.busy + self.idle + self.steal).max(1) as f64
    }

    /// Share of the machine's time the hypervisor took, 0 to 1.
    pub fn steal_share(self) -> f64 {
        self.steal as f64 / (self.busy + self.idle + self.steal).max(1) as f64
    }
}
