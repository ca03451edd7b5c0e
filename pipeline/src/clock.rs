//! UTC timestamps without a date-time dependency.

use std::time::{SystemTime, UNIX_EPOCH};

/// `2026-11-27T02:40:00Z`.
pub fn now_rfc3339() -> String {
    let (date, time) = parts(now_secs());
    format!("{date}T{time}Z")
}

/// `20261127T024000Z`: sortable, and safe in file names and URLs.
pub fn now_compact() -> String {
    let (date, time) = parts(now_secs());
    format!("{}T{}Z", date.replace('-', ""), time.replace(':', ""))
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn parts(secs: u64) -> (String, String) {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Days since 1970-01-01 to a civil date (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        format!("{y:04}-{m:02}-{d:02}"),
        format!("{:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_dates() {
        assert_eq!(super::parts(0).0, "1970-01-01");
        assert_eq!(
            super::parts(1_795_737_600),
            ("2026-11-27".into(), "00:00:00".into())
        );
        assert_eq!(super::parts(951_782_400 + 3661).1, "01:01:01");
        assert_eq!(super::parts(951_782_400).0, "2000-02-29");
    }
}
