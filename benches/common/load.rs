//! Machine load during a run, from `/proc/stat` and `/proc/self/stat` (Linux; zeros elsewhere).

use std::time::Instant;

#[derive(Clone, Copy, Default)]
struct Ticks {
    busy: u64,
    total: u64,
    steal: u64,
    own: u64,
}

fn read_ticks() -> Ticks {
    let mut t = Ticks::default();
    if let Ok(stat) = std::fs::read_to_string("/proc/stat") {
        if let Some(line) = stat.lines().next() {
            let v: Vec<u64> = line
                .split_whitespace()
                .skip(1)
                .filter_map(|x| x.parse().ok())
                .collect();
            if v.len() >= 8 {
                // user nice system idle iowait irq softirq steal
                t.total = v.iter().take(8).sum();
                t.busy = t.total - v[3] - v[4];
                t.steal = v[7];
            }
        }
    }
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        // Fields after the `(comm)`: state is field 3; utime and stime are fields 14 and 15.
        if let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) {
            let f: Vec<&str> = rest.split_whitespace().collect();
            if f.len() > 12 {
                t.own = f[11].parse::<u64>().unwrap_or(0) + f[12].parse::<u64>().unwrap_or(0);
            }
        }
    }
    t
}

/// Load started being measured.
pub struct LoadProbe {
    start: Ticks,
    at: Instant,
}

/// CPU use by other processes while a run went on, in cores (`2.0` = both vCPUs).
#[derive(Clone, Copy, Debug, Default)]
pub struct LoadSample {
    /// Cores busy with other processes (total busy minus this process).
    pub others: f64,
    /// Cores busy with this process.
    pub own: f64,
    /// Cores stolen by the hypervisor.
    pub steal: f64,
}

impl LoadSample {
    /// Starts measuring.
    pub fn start() -> LoadProbe {
        LoadProbe {
            start: read_ticks(),
            at: Instant::now(),
        }
    }
}

impl LoadProbe {
    /// Stops measuring.
    pub fn finish(self) -> LoadSample {
        let end = read_ticks();
        let secs = self.at.elapsed().as_secs_f64().max(1e-3);
        // USER_HZ is 100 on Linux.
        let hz = 100.0;
        let cores = |d: u64| d as f64 / hz / secs;
        let busy = end.busy.saturating_sub(self.start.busy);
        let own = end.own.saturating_sub(self.start.own);
        LoadSample {
            others: cores(busy.saturating_sub(own)),
            own: cores(own),
            steal: cores(end.steal.saturating_sub(self.start.steal)),
        }
    }
}
