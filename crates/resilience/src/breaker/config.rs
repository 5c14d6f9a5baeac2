//! How the breakers decide, from the settings.

use std::time::Duration;

/// How the breakers decide (see the module documentation).
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerConfig {
    /// Counted outcomes remembered (the most recent ones).
    pub window_calls: usize,
    /// Counted outcomes needed in the window before the failure rate can open the breaker.
    pub min_calls: usize,
    /// Share of failures in the window (0..=1) that opens the breaker.
    pub failure_rate: f64,
    /// The first open period.
    pub open_for: Duration,
    /// The longest open period (it doubles after each failed probe).
    pub max_open_for: Duration,
    /// Probe calls admitted at once while half-open.
    pub half_open_probes: usize,
}

impl From<&settings::BreakerSettings> for BreakerConfig {
    fn from(settings: &settings::BreakerSettings) -> Self {
        Self {
            window_calls: settings.window_calls,
            min_calls: settings.min_calls,
            failure_rate: settings.failure_rate,
            open_for: Duration::from_secs(settings.open_seconds),
            max_open_for: Duration::from_secs(settings.max_open_seconds),
            half_open_probes: settings.half_open_probes,
        }
    }
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self::from(&settings::BreakerSettings::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_comes_from_the_settings() {
        let config = BreakerConfig::from(&settings::BreakerSettings::default());
        assert_eq!(config.window_calls, 20);
        assert_eq!(config.open_for, Duration::from_secs(5));
        assert_eq!(config.max_open_for, Duration::from_secs(60));
        assert_eq!(config.half_open_probes, 1);
    }
}
