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
