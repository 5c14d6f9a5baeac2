//! Operator commands that run against the database directly.

use settings::Settings;

/// Creates the tenant if needed and prints a new API key for it, once.
pub async fn create_key(
    settings: &Settings,
    tenant: &str,
    label: Option<&str>,
) -> anyhow::Result<String> {
    let tenant = tenant.trim();
    anyhow::ensure!(
        !tenant.is_empty() && tenant.len() <= 100,
        "the tenant name must be 1 to 100 characters"
    );
    let db = store::connect(&settings.database).await?;
    let created = store::tenants::create_key(&db, tenant, label).await?;
    if created.tenant_created {
        tracing::info!(tenant, tenant_id = %created.tenant_id.0, "tenant created");
    }
    Ok(created.key)
}

/// Sets a tenant's weight in the fair share of the Cohere budget and its optional
/// calls-per-minute cap (`None`: no cap).
pub async fn set_share(
    settings: &Settings,
    tenant: &str,
    weight: u32,
    calls_per_minute: Option<u32>,
) -> anyhow::Result<()> {
    anyhow::ensure!((1..=1000).contains(&weight), "the weight must be 1 to 1000");
    anyhow::ensure!(
        calls_per_minute.is_none_or(|cap| cap >= 1),
        "the calls-per-minute cap must be at least 1"
    );
    let db = store::connect(&settings.database).await?;
    let share = store::tenants::Share {
        weight: weight as i32,
        calls_per_minute: calls_per_minute.map(|cap| cap.min(i32::MAX as u32) as i32),
    };
    match store::tenants::set_share(&db, tenant.trim(), share).await {
        Err(store::StoreError::NotFound) => anyhow::bail!("no tenant called {tenant:?}"),
        other => other?,
    }
    tracing::info!(tenant, weight, ?calls_per_minute, "tenant share set");
    Ok(())
}
