//! One picture of a day's capacity plan (`orderbroker plan --svg FILE`): the floors over time,
//! the spike and event windows, the forecast, the raise and restore times, MinTasks/MaxTasks
//! and the standby count, from 04:00 to 20:00 New York time. Drawn from the same [`Plan`] the
//! market-warmup function writes, so the two cannot disagree. Plain SVG text: no rasteriser.

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};

use crate::calendar::{local_instant, EXCHANGE_TZ};
use crate::warmup::{Forecast, Plan, Spike};

/// One day of the picture.
#[derive(Debug, Clone)]
pub struct Day<'a> {
    pub date: NaiveDate,
    /// Why the market is closed; `None` on a trading day.
    pub closed: Option<String>,
    pub plan: Option<&'a Plan>,
    pub forecast: Option<&'a Forecast>,
    /// MinTasks (the normal floor) and MaxTasks.
    pub min_tasks: u32,
    pub max_tasks: u32,
    /// The standby tasks kept above demand (the warm pool's N), if known.
    pub standby: Option<u32>,
    /// The ALB capacity reservation: held from, until, and its units, if shown.
    pub reservation: Option<(DateTime<Utc>, DateTime<Utc>, u32)>,
}

const WIDTH: f64 = 960.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 24.0;
const PANEL: f64 = 300.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 60.0;
/// The drawn span, New York time.
const FROM_HOUR: u32 = 4;
const TO_HOUR: u32 = 20;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn hm(t: DateTime<Utc>) -> String {
    t.with_timezone(&EXCHANGE_TZ).format("%H:%M").to_string()
}

/// The floor in force at `t` by the plan's windows (the restore floor outside them).
pub fn floor_at(plan: &Plan, t: DateTime<Utc>) -> u32 {
    plan.windows
        .iter()
        .find(|w| w.window.raise_at <= t && t < w.window.restore_at)
        .map_or(plan.restore_floor, |w| w.floor)
}

struct Frame {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    top: f64,
    y_max: f64,
}

impl Frame {
    fn x(&self, t: DateTime<Utc>) -> f64 {
        let span = (self.end - self.start).num_seconds().max(1) as f64;
        let at = (t - self.start).num_seconds().clamp(0, span as i64) as f64;
        LEFT + at / span * (WIDTH - LEFT - RIGHT)
    }

    fn y(&self, v: f64) -> f64 {
        let h = PANEL - TOP - BOTTOM;
        self.top + TOP + h - (v.clamp(0.0, self.y_max) / self.y_max) * h
    }
}

/// The SVG document for `days`, one panel each, top to bottom.
pub fn svg(days: &[Day<'_>]) -> String {
    let height = PANEL * days.len().max(1) as f64 + 70.0;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\" font-family=\"sans-serif\" font-size=\"11\">\n"
    );
    out.push_str("<title>OrderBroker capacity plan</title>\n");
    out.push_str(&format!(
        "<rect x=\"0\" y=\"0\" width=\"{WIDTH}\" height=\"{height}\" fill=\"white\"/>\n"
    ));
    for (k, day) in days.iter().enumerate() {
        out.push_str(&panel(day, PANEL * k as f64));
    }
    out.push_str(&legend(PANEL * days.len().max(1) as f64 + 10.0));
    out.push_str("</svg>\n");
    out
}

fn panel(day: &Day<'_>, top: f64) -> String {
    let mut s = String::new();
    let (Ok(start), Ok(end)) = (
        local_instant(
            day.date,
            NaiveTime::from_hms_opt(FROM_HOUR, 0, 0).unwrap_or_default(),
        ),
        local_instant(
            day.date,
            NaiveTime::from_hms_opt(TO_HOUR, 0, 0).unwrap_or_default(),
        ),
    ) else {
        return s;
    };
    let forecast_max = day
        .forecast
        .map(|f| {
            f.points
                .iter()
                .filter(|(t, v)| *t >= start - Duration::hours(1) && *t < end && v.is_finite())
                .map(|(_, v)| *v)
                .fold(0.0, f64::max)
        })
        .unwrap_or(0.0);
    let floors_max = day
        .plan
        .map(|p| p.windows.iter().map(|w| w.floor).max().unwrap_or(0))
        .unwrap_or(0);
    let y_max = f64::from(day.max_tasks.max(floors_max).max(1)).max(forecast_max) * 1.1;
    let f = Frame {
        start,
        end,
        top,
        y_max,
    };
    let title = match &day.closed {
        Some(why) => format!("{} - market closed ({})", day.date, why),
        None => format!("{} - New York time, 04:00-20:00", day.date),
    };
    s.push_str(&format!(
        "<g id=\"day-{}\">\n<text x=\"{LEFT}\" y=\"{:.1}\" font-size=\"14\" font-weight=\"bold\">{}</text>\n",
        day.date,
        top + 22.0,
        esc(&title)
    ));
    // Axes and hour grid.
    let (y0, y1) = (f.y(0.0), f.y(y_max));
    for h in FROM_HOUR..=TO_HOUR {
        let Ok(t) = local_instant(
            day.date,
            NaiveTime::from_hms_opt(h, 0, 0).unwrap_or_default(),
        ) else {
            continue;
        };
        let x = f.x(t);
        s.push_str(&format!(
            "<line x1=\"{x:.1}\" y1=\"{y1:.1}\" x2=\"{x:.1}\" y2=\"{y0:.1}\" stroke=\"#eee\"/>\n<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#666\">{h:02}:00</text>\n",
            y0 + 14.0
        ));
    }
    s.push_str(&format!(
        "<line x1=\"{LEFT}\" y1=\"{y0:.1}\" x2=\"{:.1}\" y2=\"{y0:.1}\" stroke=\"#333\"/>\n<line x1=\"{LEFT}\" y1=\"{y1:.1}\" x2=\"{LEFT}\" y2=\"{y0:.1}\" stroke=\"#333\"/>\n<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#666\">tasks</text>\n",
        WIDTH - RIGHT,
        LEFT - 6.0,
        y1 + 4.0
    ));
    // MinTasks and MaxTasks.
    for (v, label, colour) in [
        (day.min_tasks, "MinTasks", "#888"),
        (day.max_tasks, "MaxTasks", "#c00"),
    ] {
        let y = f.y(f64::from(v));
        s.push_str(&format!(
            "<line class=\"bound\" x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"{colour}\" stroke-dasharray=\"6 4\"/>\n<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"{colour}\">{label} {v}</text>\n",
            WIDTH - RIGHT,
            WIDTH - RIGHT - 4.0,
            y - 4.0
        ));
    }
    if day.closed.is_some() {
        s.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"16\" fill=\"#666\">no capacity changes: MinCapacity stays {}</text>\n</g>\n",
            WIDTH / 2.0,
            f.y(y_max / 2.0),
            day.min_tasks
        ));
        return s;
    }
    let Some(plan) = day.plan else {
        s.push_str("</g>\n");
        return s;
    };
    // Windows: the lead (raise -> spike start) light, the spike itself darker.
    for w in &plan.windows {
        let (fill, label) = match w.window.spike {
            Spike::Open => ("#cfe3ff", "open"),
            Spike::Close => ("#cfe3ff", "close"),
            Spike::Event => ("#ffe0b3", "event"),
        };
        let (xr, xs, xe) = (
            f.x(w.window.raise_at),
            f.x(w.window.spike_start),
            f.x(w.window.spike_end),
        );
        s.push_str(&format!(
            "<rect class=\"lead\" x=\"{xr:.1}\" y=\"{y1:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{fill}\" opacity=\"0.45\"/>\n<rect class=\"window {label}\" x=\"{xs:.1}\" y=\"{y1:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{fill}\"><title>{}</title></rect>\n<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{label} {}-{}</text>\n",
            (xs - xr).max(0.0),
            y0 - y1,
            (xe - xs).max(1.0),
            y0 - y1,
            esc(&w.reason),
            (xs + xe) / 2.0,
            y1 + 12.0,
            hm(w.window.spike_start),
            hm(w.window.spike_end)
        ));
    }
    // The forecast, each point valid for its hour.
    if let Some(fc) = day.forecast {
        let mut pts = Vec::new();
        for (t, v) in fc
            .points
            .iter()
            .filter(|(t, v)| *t < end && *t + Duration::hours(1) > start && v.is_finite())
        {
            pts.push(format!("{:.1},{:.1}", f.x(*t), f.y(*v)));
            pts.push(format!(
                "{:.1},{:.1}",
                f.x(*t + Duration::hours(1)),
                f.y(*v)
            ));
        }
        if !pts.is_empty() {
            s.push_str(&format!(
                "<polyline class=\"forecast\" points=\"{}\" fill=\"none\" stroke=\"#2a9d8f\" stroke-width=\"2\" stroke-dasharray=\"3 3\"/>\n",
                pts.join(" ")
            ));
        }
    }
    // The floor: a step line through every raise and restore.
    let mut changes: Vec<DateTime<Utc>> = vec![start];
    for w in &plan.windows {
        for t in [w.window.raise_at, w.window.restore_at] {
            if t > start && t < end {
                changes.push(t);
            }
        }
    }
    changes.sort();
    changes.dedup();
    let mut pts = Vec::new();
    for (k, t) in changes.iter().enumerate() {
        let v = f64::from(if plan.paused {
            plan.restore_floor
        } else {
            floor_at(plan, *t)
        });
        let next = changes.get(k + 1).copied().unwrap_or(end);
        pts.push(format!("{:.1},{:.1}", f.x(*t), f.y(v)));
        pts.push(format!("{:.1},{:.1}", f.x(next), f.y(v)));
    }
    s.push_str(&format!(
        "<polyline class=\"floor\" points=\"{}\" fill=\"none\" stroke=\"#1d3557\" stroke-width=\"2.5\"/>\n",
        pts.join(" ")
    ));
    if let Some((from, to, units)) = day.reservation {
        let (xa, xb) = (f.x(from), f.x(to));
        s.push_str(&format!(
            "<rect class=\"reservation\" x=\"{xa:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"8\" fill=\"#6a4c93\" opacity=\"0.6\"/>\n<text x=\"{xa:.1}\" y=\"{:.1}\" fill=\"#6a4c93\">ALB reservation {units} LCU {}-{}</text>\n",
            y0 + 20.0,
            (xb - xa).max(1.0),
            y0 + 40.0,
            hm(from),
            hm(to)
        ));
    }
    if let Some(n) = day.standby {
        s.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#6a4c93\">standby tasks N = {n} above demand (warm pool)</text>\n",
            LEFT + 8.0,
            top + 36.0
        ));
    }
    // Raise and restore markers, with time and value.
    if !plan.paused {
        for w in &plan.windows {
            for (t, v, what) in [
                (w.window.raise_at, w.floor, "raise"),
                (w.window.restore_at, plan.restore_floor, "restore"),
            ] {
                if t < start || t > end {
                    continue;
                }
                let (x, y) = (f.x(t), f.y(f64::from(v)));
                s.push_str(&format!(
                    "<circle class=\"{what}\" cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3.5\" fill=\"#1d3557\"/>\n<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#1d3557\">{what} {} -&gt; {v}</text>\n",
                    if what == "raise" { y - 8.0 } else { y + 16.0 },
                    hm(t)
                ));
            }
        }
    } else {
        s.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"14\" fill=\"#c00\">PAUSED by the operator: nothing is raised</text>\n",
            WIDTH / 2.0,
            top + 36.0
        ));
    }
    s.push_str("</g>\n");
    s
}

fn legend(top: f64) -> String {
    let items = [
        ("#1d3557", "MinCapacity floor (the plan)"),
        ("#2a9d8f", "predictive forecast (tasks)"),
        (
            "#cfe3ff",
            "open / close spike window (lighter: the lead before it)",
        ),
        ("#ffe0b3", "market event window"),
        ("#c00", "MaxTasks"),
        ("#888", "MinTasks"),
        ("#6a4c93", "ALB capacity reservation (when shown)"),
    ];
    let mut s = format!("<g id=\"legend\" transform=\"translate({LEFT},{top:.1})\">\n");
    for (k, (colour, text)) in items.iter().enumerate() {
        let (x, y) = ((k % 3) as f64 * 290.0, (k / 3) as f64 * 18.0);
        s.push_str(&format!(
            "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"14\" height=\"10\" fill=\"{colour}\"/>\n<text x=\"{:.1}\" y=\"{:.1}\">{}</text>\n",
            x + 20.0,
            y + 9.0,
            esc(text)
        ));
    }
    s.push_str("</g>\n");
    s
}
