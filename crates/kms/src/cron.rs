//! `keyRotation.schedule` syntax, as Kubernetes CronJobs parse it (robfig/cron `ParseStandard`):
//! five fields, a descriptor (`@weekly`, ...), or `@every <Go duration>`; no `TZ=`/`CRON_TZ=`.

/// Why a schedule is invalid, phrased to follow "schedule ... is not a valid cron schedule: ".
pub fn check_schedule(schedule: &str) -> Result<(), String> {
    let s = schedule.trim();
    if s.is_empty() {
        return Err("it is empty".into());
    }
    if s.starts_with("TZ=") || s.starts_with("CRON_TZ=") {
        return Err("Kubernetes CronJobs do not accept TZ= or CRON_TZ= in the schedule".into());
    }
    if let Some(rest) = s.strip_prefix('@') {
        if let Some(d) = rest.strip_prefix("every ") {
            return parse_go_duration(d.trim())
                .map(|_| ())
                .map_err(|e| format!("@every needs a Go duration such as 168h ({e})"));
        }
        return match rest {
            "yearly" | "annually" | "monthly" | "weekly" | "daily" | "midnight" | "hourly" => Ok(()),
            _ => Err(format!(
                "unknown descriptor @{rest}; use @yearly, @monthly, @weekly, @daily, @hourly or @every <duration>"
            )),
        };
    }
    let fields: Vec<&str> = s.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!("expected 5 fields (minute hour day-of-month month day-of-week), found {}", fields.len()));
    }
    const SPECS: [(&str, u32, u32, &[&str]); 5] = [
        ("minute", 0, 59, &[]),
        ("hour", 0, 23, &[]),
        ("day-of-month", 1, 31, &[]),
        ("month", 1, 12, &["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]),
        ("day-of-week", 0, 6, &["sun", "mon", "tue", "wed", "thu", "fri", "sat"]),
    ];
    for (field, (name, min, max, names)) in fields.iter().zip(SPECS) {
        check_field(field, min, max, names).map_err(|e| format!("{name} field {field:?}: {e}"))?;
    }
    Ok(())
}

fn check_field(field: &str, min: u32, max: u32, names: &[&str]) -> Result<(), String> {
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, Some(s)),
            None => (part, None),
        };
        let (lo, hi) = if range == "*" || range == "?" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a, min, max, names)?, value(b, min, max, names)?)
        } else {
            let v = value(range, min, max, names)?;
            (v, if step.is_some() { max } else { v })
        };
        if lo > hi {
            return Err(format!("range {range} runs backwards"));
        }
        if let Some(step) = step {
            match step.parse::<u32>() {
                Ok(n) if n > 0 => {}
                _ => return Err(format!("step {step:?} must be a positive number")),
            }
        }
    }
    Ok(())
}

fn value(s: &str, min: u32, max: u32, names: &[&str]) -> Result<u32, String> {
    let lower = s.to_ascii_lowercase();
    if let Some(i) = names.iter().position(|n| *n == lower) {
        return Ok(min + i as u32);
    }
    match s.parse::<u32>() {
        Ok(v) if (min..=max).contains(&v) => Ok(v),
        Ok(v) => Err(format!("{v} is outside {min}-{max}")),
        Err(_) => Err(format!("{s:?} is not a number")),
    }
}

/// Go's `time.ParseDuration`, returning nanoseconds.
pub fn parse_go_duration(s: &str) -> Result<f64, String> {
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(0.0);
    }
    if rest.is_empty() {
        return Err("empty duration".into());
    }
    let mut total = 0.0;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let num = &rest[..num_len];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return Err(format!("invalid duration {s:?}"));
        }
        let n: f64 = num.parse().map_err(|_| format!("invalid duration {s:?}"))?;
        rest = &rest[num_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err(format!("missing unit in duration {s:?}")),
            u => return Err(format!("unknown unit {u:?} in duration {s:?}")),
        };
        total += n * scale;
        rest = &rest[unit_len..];
    }
    Ok(if neg { -total } else { total })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("@weekly")]
    #[case("@annually")]
    #[case("@every 168h")]
    #[case("@every 1h30m")]
    #[case("*/1 * * * *")]
    #[case("0 2 * * SUN")]
    #[case("0 0 1,15 jan-jun ?")]
    #[case("5/10 0-23/2 * * 1-5")]
    fn valid(#[case] s: &str) {
        assert_eq!(check_schedule(s), Ok(()));
    }

    #[rstest]
    #[case("", "empty")]
    #[case("@fortnightly", "unknown descriptor")]
    #[case("@every week", "Go duration")]
    #[case("* * * *", "expected 5 fields")]
    #[case("* * * * * *", "expected 5 fields")]
    #[case("60 * * * *", "outside 0-59")]
    #[case("* * * * 7", "outside 0-6")]
    #[case("* * 0 * *", "outside 1-31")]
    #[case("5-1 * * * *", "backwards")]
    #[case("*/0 * * * *", "positive")]
    #[case("TZ=UTC 0 0 * * *", "TZ=")]
    #[case("CRON_TZ=UTC 0 0 * * *", "TZ=")]
    fn invalid(#[case] s: &str, #[case] why: &str) {
        let err = check_schedule(s).unwrap_err();
        assert!(err.contains(why), "{s}: {err}");
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("1h30m").unwrap(), 5400e9);
        assert_eq!(parse_go_duration("1.5h").unwrap(), 5400e9);
        assert!(parse_go_duration("10").is_err());
        assert!(parse_go_duration("10x").is_err());
    }
}
