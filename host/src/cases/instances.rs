//! `instances-isolated`: what ABI 1.1's instances promise — state written
//! through one instance is not seen through another, in one process.
//!
//! Two fresh instances, `x` and `y`, made one after the other, get the
//! same calls in turn (each method but the wait probe, on the first inputs
//! of the fuzz series: `x`'s first call, then `y`'s, and so on).
//! Isolated, each answers exactly as the other did; then calls to `y`
//! alone, on the next inputs, leave `x`'s saved state (a stateful
//! plugin's) as it was. A plugin
//! whose state is global fails either way, also one that resets the
//! global when it makes an instance, and one whose `create_instance`
//! hands out a live instance again fails at once. One whose answers depend
//! on time or chance cannot be told apart from shared state by its
//! answers, and the reason says so.

use crate::fuzz;
use crate::outcome::{CaseSettings, Concluded, Outcome};
use crate::plugin::called::{self, Called};
use crate::plugin::session::{Answer, InstanceId, Session, status_text};
use crate::text::clip;

/// Methods the case calls, and inputs of the fuzz series each gets.
const METHODS: usize = 16;
const INPUTS: u32 = 4;

/// One call's answer, as compared: status and output.
type Reply = (i32, Vec<u8>);

/// A call the case made (method, fuzz input) and its reply.
type Replied = ((String, u32), Reply);

pub(super) fn instances_isolated(session: &mut Session, settings: &CaseSettings) -> Concluded {
    if !session.makes_instances()? {
        return Ok(Outcome::skipped(
            "the plugin has one implicit instance (ABI 1.0, or create_instance NULL): there is no other instance to keep apart from",
        ));
    }
    session.init()?;
    let all: Vec<String> = session
        .host()
        .map(|host| host.with_registry(|r| r.callable_method_names()))
        .unwrap_or_default();
    if all.is_empty() {
        return Ok(Outcome::skipped(
            "the plugin registers no method but the wait probe: there is no call to compare its instances by",
        ));
    }
    let methods: Vec<String> = all.iter().take(METHODS).cloned().collect();
    let x = session.new_instance()?;
    let y = session.new_instance();
    let y = match y {
        Ok(y) => y,
        Err(failure) => {
            session.destroy_instance(x);
            return Ok(failure);
        }
    };
    let compared = in_turn(session, [x, y], &methods, settings.seed);
    // Then `y` alone, on the next inputs of the series (a write that only
    // repeated `x`'s would change nothing shared): `x` gets no call, so
    // its state must stay put.
    let x_before = compared.as_ref().ok().map(|_| saved(session, x));
    let alone = calls_on(session, y, &methods, INPUTS..2 * INPUTS, settings.seed);
    let x_after = saved(session, x);
    session.destroy_instance(y);
    session.destroy_instance(x);
    let (first, second) = compared?;
    alone?;
    let x_before = x_before.expect("compared")?;
    let x_after = x_after?;
    if x_before != x_after {
        return Ok(Outcome::fail(format!(
            "calls to one instance changed another's state: instance x saved {} bytes before calls to instance y alone and {} bytes after, and they differ; keep state in the instance, not in globals",
            x_before.as_ref().map_or(0, Vec::len),
            x_after.as_ref().map_or(0, Vec::len)
        )));
    }
    let calls = first.len();
    let differs = (0..calls.min(second.len())).find(|&i| first[i].1 != second[i].1);
    if let Some(index) = differs {
        let ((method, input), a) = &first[index];
        let b = &second[index].1;
        return Ok(Outcome::fail(format!(
            "two fresh instances answered the same call differently: `{}` on fuzz input #{input} ({}) answered {} on one and {} on the other, which had the same calls before it, so state written through one instance is seen through the other (or the method's answers depend on time or chance, which cannot be told apart)",
            clip(method, 60),
            fuzz::describe(settings.seed, *input),
            reply_text(a),
            reply_text(b)
        )));
    }
    let stateful = if x_after.is_some() {
        ", and one's saved state was not touched by calls to the other"
    } else {
        ""
    };
    let of_methods = match all.len() > methods.len() {
        true => format!(
            " (the first {} of {} methods in name order)",
            methods.len(),
            all.len()
        ),
        false => String::new(),
    };
    Ok(Outcome::pass(format!(
        "two fresh instances answered the same {calls} call(s) alike, made in turn{stateful}{of_methods}"
    )))
}

/// The replies of `instances` to each of `methods` on the first inputs of
/// the fuzz series, each call made to one, then the other.
fn in_turn(
    session: &mut Session,
    instances: [InstanceId; 2],
    methods: &[String],
    seed: u64,
) -> Result<(Vec<Replied>, Vec<Replied>), Outcome> {
    let (mut first, mut second) = (Vec::new(), Vec::new());
    for method in methods {
        for index in 0..INPUTS {
            for (instance, replies) in instances.into_iter().zip([&mut first, &mut second]) {
                replies.extend(call_one(session, instance, method, index, seed)?);
            }
        }
    }
    Ok((first, second))
}

/// The replies of `instance` to each of `methods` on `inputs` of the fuzz
/// series, in order, with what each call was.
fn calls_on(
    session: &mut Session,
    instance: InstanceId,
    methods: &[String],
    inputs: std::ops::Range<u32>,
    seed: u64,
) -> Result<Vec<Replied>, Outcome> {
    let mut replies = Vec::new();
    for method in methods {
        for index in inputs.clone() {
            replies.extend(call_one(session, instance, method, index, seed)?);
        }
    }
    Ok(replies)
}

/// One call of `method` on fuzz input `index` to `instance`: its reply
/// (none for a method the plugin does not have), or the failure of a
/// method that panicked.
fn call_one(
    session: &mut Session,
    instance: InstanceId,
    method: &str,
    index: u32,
    seed: u64,
) -> Result<Option<Replied>, Outcome> {
    let input = fuzz::input(seed, index);
    let answer = session.call_with(instance, method, &input, &Default::default())?;
    let Some(Answer { status, output }) = answer else {
        return Ok(None);
    };
    if Called::of(status) == Called::Panicked {
        let on = format!(" on fuzz input #{index}");
        return Err(called::panicked(
            &format!("`{}`", clip(method, 60)),
            &on,
            Vec::new(),
        ));
    }
    Ok(Some(((method.to_owned(), index), (status, output))))
}

/// The saved state of `instance`; `None` for a stateless plugin.
fn saved(session: &mut Session, instance: InstanceId) -> Result<Option<Vec<u8>>, Outcome> {
    match session.save_state_of(instance)? {
        None => Ok(None),
        Some(Answer { status: 0, output }) => Ok(Some(output)),
        Some(Answer { status, .. }) => Err(Outcome::fail(format!(
            "saving an instance's state returned {}",
            status_text(status)
        ))),
    }
}

/// `0 (OK) with 8 bytes 0x0100000000000000`, short.
fn reply_text((status, output): &Reply) -> String {
    let bytes: String = output.iter().take(16).map(|b| format!("{b:02x}")).collect();
    let more = if output.len() > 16 { "…" } else { "" };
    format!(
        "{} with {} byte(s) 0x{bytes}{more}",
        status_text(*status),
        output.len()
    )
}
