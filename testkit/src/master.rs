//! Master-data builders: the tenant, licence, devices and employees a test needs, written
//! through `dakoku_store::master` (as `punchctl` writes them, so master-data versions and
//! notifications are the real ones), and device tokens minted through `dakoku_token`.
//!
//! ```ignore
//! TenantSeed::new("acme", &group)
//!     .licence(5)
//!     .device("PT-1")
//!     .licensed("E-1", "CARD-1")
//!     .employee(EmployeeSeed::unlicensed("E-2", "CARD-2"))
//!     .seed(&db)
//!     .await?;
//! ```

use chrono::{NaiveDate, NaiveTime};
use chrono_tz::Tz;
use dakoku_schemas::{GroupId, TenantId};
use dakoku_store::master::{self, LicenceTerms, Moment, NewEmployee, NewTenant};
use dakoku_token::{DeviceClaims, TokenKeys};

use crate::database::TestDatabase;

/// A tenant with what belongs to it, seeded in one call ([`TenantSeed::seed`]).
#[derive(Debug, Clone)]
pub struct TenantSeed {
    tenant: String,
    group: GroupId,
    calendar: Option<(Tz, NaiveTime)>,
    licence: Option<LicenceTerms>,
    devices: Vec<String>,
    employees: Vec<EmployeeSeed>,
}

impl TenantSeed {
    /// `tenant` (named after itself) in `group`, with the contract's calendar (`Asia/Tokyo`,
    /// day change 05:00), no licence, no device and no employee.
    pub fn new(tenant: &str, group: &GroupId) -> Self {
        Self {
            tenant: tenant.to_owned(),
            group: group.clone(),
            calendar: None,
            licence: None,
            devices: Vec::new(),
            employees: Vec::new(),
        }
    }

    /// Its time zone and day-change time.
    pub fn calendar(mut self, tz: Tz, day_change: NaiveTime) -> Self {
        self.calendar = Some((tz, day_change));
        self
    }

    /// An open licence of `seats` seats.
    pub fn licence(self, seats: u32) -> Self {
        self.licence_valid(seats, None, None)
    }

    /// A licence of `seats` seats valid on the work dates `from..=until` (`None` = open).
    pub fn licence_valid(
        mut self,
        seats: u32,
        valid_from: Option<NaiveDate>,
        valid_until: Option<NaiveDate>,
    ) -> Self {
        self.licence = Some(LicenceTerms {
            seats,
            valid_from,
            valid_until,
        });
        self
    }

    /// A device of the tenant.
    pub fn device(mut self, device: impl Into<String>) -> Self {
        self.devices.push(device.into());
        self
    }

    /// Devices of the tenant.
    pub fn devices<S: Into<String>>(mut self, devices: impl IntoIterator<Item = S>) -> Self {
        self.devices.extend(devices.into_iter().map(Into::into));
        self
    }

    /// An employee holding a licence seat, with `card`.
    pub fn licensed(self, employee: impl Into<String>, card: impl Into<String>) -> Self {
        self.employee(EmployeeSeed::licensed(employee, card))
    }

    /// An employee as described.
    pub fn employee(mut self, employee: EmployeeSeed) -> Self {
        self.employees.push(employee);
        self
    }

    /// The tenant id.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// Writes the tenant (and its group), its licence, devices and employees, in that order.
    pub async fn seed(&self, db: &TestDatabase) -> anyhow::Result<()> {
        let mut client = db.client().await?;
        let tenant: TenantId = self.tenant.parse()?;
        let mut new = NewTenant::with_defaults(tenant.clone(), &self.tenant, self.group.clone());
        if let Some((tz, day_change)) = self.calendar {
            new.time_zone = tz;
            new.day_change = day_change;
        }
        master::add_tenant(&mut client, &new).await?;
        if let Some(terms) = self.licence {
            master::set_licence(&mut client, &tenant, terms).await?;
        }
        for device in &self.devices {
            master::add_device(&client, &tenant, &device.parse()?).await?;
        }
        for employee in &self.employees {
            employee.seed_on(&mut client, &tenant).await?;
        }
        Ok(())
    }
}

/// An employee of a tenant: card, licence seat, end of activity.
#[derive(Debug, Clone)]
pub struct EmployeeSeed {
    employee: String,
    card: String,
    licensed: bool,
    active_until: Option<String>,
}

impl EmployeeSeed {
    /// An employee with `card`, holding a licence seat.
    pub fn licensed(employee: impl Into<String>, card: impl Into<String>) -> Self {
        Self {
            employee: employee.into(),
            card: card.into(),
            licensed: true,
            active_until: None,
        }
    }

    /// An employee with `card`, without a licence seat.
    pub fn unlicensed(employee: impl Into<String>, card: impl Into<String>) -> Self {
        Self {
            licensed: false,
            ..Self::licensed(employee, card)
        }
    }

    /// Active until `moment` (exclusive): RFC 3339 or a date.
    pub fn active_until(mut self, moment: impl Into<String>) -> Self {
        self.active_until = Some(moment.into());
        self
    }

    /// Adds the employee to `tenant`, which must exist already (an employee joining later).
    pub async fn seed(&self, db: &TestDatabase, tenant: &str) -> anyhow::Result<()> {
        self.seed_on(&mut db.client().await?, &tenant.parse()?)
            .await
    }

    async fn seed_on(
        &self,
        client: &mut tokio_postgres::Client,
        tenant: &TenantId,
    ) -> anyhow::Result<()> {
        master::add_employee(
            client,
            &NewEmployee {
                tenant: tenant.clone(),
                employee: self.employee.parse()?,
                card: self.card.parse()?,
                name: String::new(),
                active_from: None,
                active_until: self
                    .active_until
                    .as_deref()
                    .map(Moment::parse)
                    .transpose()?,
                licensed: self.licensed,
            },
        )
        .await?;
        Ok(())
    }
}

/// The current master-data version.
pub async fn master_data_version(db: &TestDatabase) -> anyhow::Result<i64> {
    Ok(master::master_data_version(&db.client().await?).await?)
}

/// A token signed with `keys` for `tenant`/`device`, valid for an hour.
pub fn mint_token(keys: &TokenKeys, tenant: &str, device: &str) -> anyhow::Result<String> {
    Ok(keys.mint(&DeviceClaims {
        tenant: tenant.parse()?,
        device: device.parse()?,
        expires_at: chrono::Utc::now().timestamp() + 3600,
    }))
}
