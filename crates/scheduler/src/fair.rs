//! How a pass shares the free part of the window among tenants: water-filling by weight.
//!
//! Each free slot goes to the tenant with work whose items in the window, per unit of weight,
//! are fewest. Over passes every tenant with work converges to `window × weight / Σ weights`
//! of the window, a tenant alone takes all of it, and a newcomer gets every slot that frees up
//! until it reaches its share. Slots are never taken back from a tenant over its share: its
//! items finish and the slots go to the others.

use std::collections::BTreeMap;

use uuid::Uuid;

/// What one tenant asks of a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Demand {
    pub tenant: Uuid,
    pub weight: u32,
    /// Its items in the window now.
    pub in_window: u32,
    /// The most it may be given this pass (its per-minute cap's tokens; `u32::MAX` without a
    /// cap). A tenant with nothing to release does not ask at all.
    pub limit: u32,
}

/// Shares `free` slots among `demands`; tenants given nothing are left out.
pub fn allocate(free: u32, demands: &[Demand]) -> BTreeMap<Uuid, u32> {
    let mut given: BTreeMap<Uuid, u32> = BTreeMap::new();
    let mut load: Vec<(Demand, u32)> = demands
        .iter()
        .filter(|d| d.limit > 0 && d.weight > 0)
        .map(|d| (*d, d.in_window))
        .collect();
    for _ in 0..free {
        // Smallest (in window / weight), compared without division; ties to the lower id.
        let next = load
            .iter_mut()
            .filter(|(demand, _)| given.get(&demand.tenant).copied().unwrap_or(0) < demand.limit)
            .min_by(|(a, load_a), (b, load_b)| {
                (u64::from(*load_a) * u64::from(b.weight), a.tenant)
                    .cmp(&(u64::from(*load_b) * u64::from(a.weight), b.tenant))
            });
        let Some((demand, load)) = next else { break };
        *load += 1;
        *given.entry(demand.tenant).or_insert(0) += 1;
    }
    given
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn demand(n: u128, weight: u32, in_window: u32) -> Demand {
        Demand {
            tenant: tenant(n),
            weight,
            in_window,
            limit: u32::MAX,
        }
    }

    #[test]
    fn a_tenant_alone_takes_the_whole_window() {
        let given = allocate(100, &[demand(1, 1, 0)]);
        assert_eq!(given[&tenant(1)], 100);
    }

    #[test]
    fn equal_weights_split_an_empty_window_evenly() {
        let given = allocate(100, &[demand(1, 1, 0), demand(2, 1, 0)]);
        assert_eq!((given[&tenant(1)], given[&tenant(2)]), (50, 50));
    }

    #[test]
    fn weights_three_to_one_split_three_to_one() {
        let given = allocate(100, &[demand(1, 3, 0), demand(2, 1, 0)]);
        assert_eq!((given[&tenant(1)], given[&tenant(2)]), (75, 25));
    }

    #[test]
    fn a_newcomer_gets_the_freed_slots_until_it_reaches_its_share() {
        // Tenant 1 fills 90 of a 100-item window; 10 slots free up.
        let given = allocate(10, &[demand(1, 1, 90), demand(2, 1, 0)]);
        assert_eq!(given.get(&tenant(1)), None);
        assert_eq!(given[&tenant(2)], 10);
        // Later, at 60/40 with 10 free: the newcomer catches up to 50/50.
        let given = allocate(10, &[demand(1, 1, 50), demand(2, 1, 40)]);
        assert_eq!(given[&tenant(2)], 10);
    }

    #[test]
    fn a_capped_tenant_leaves_the_rest_to_the_others() {
        let mut capped = demand(1, 1, 0);
        capped.limit = 5;
        let given = allocate(100, &[capped, demand(2, 1, 0)]);
        assert_eq!((given[&tenant(1)], given[&tenant(2)]), (5, 95));
    }

    #[test]
    fn nothing_is_given_when_nothing_is_free_or_nobody_asks() {
        assert!(allocate(0, &[demand(1, 1, 0)]).is_empty());
        assert!(allocate(10, &[]).is_empty());
    }
}
