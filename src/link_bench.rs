//! `vidx bench link`: linking quality (B-cubed and pairwise precision/recall
//! vs the generator's ground truth, threshold and rule sweep), triage
//! accuracy, and linking at scale with time per stage and peak memory.

/// Options of `vidx bench link`.
#[derive(clap::Args, Debug, Clone)]
pub struct LinkBenchArgs {
    /// Number of series to plant.
    #[arg(long, default_value_t = 200)]
    pub series: usize,
}

pub fn run(a: LinkBenchArgs) -> anyhow::Result<()> {
    anyhow::bail!("vidx bench link is not written yet (series {})", a.series)
}
