//! The pages: plain HTML with every untrusted value escaped, no script, and a small SVG
//! picture of the delegation chain.

use serde_json::Value;

use super::agent::{Mode, TaskOutcome};

pub(crate) use dual_auth::escape_html as escape;

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:60rem;color:#1b1f24;background:#f6f8fa}\
h1{font-size:1.5rem}h2{font-size:1.1rem;margin:0 0 .5rem}\
.card{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:1rem 1.25rem;margin:1rem 0}\
.pair{display:flex;gap:1rem}.pair .card{flex:1;margin:0}\
.agent{border-top:6px solid #0969da}.human{border-top:6px solid #1a7f37}\
.error{border-top:6px solid #cf222e}.ok{color:#1a7f37}.bad{color:#cf222e}\
dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem;margin:0}dt{color:#57606a}dd{margin:0;word-break:break-all}\
button,.button{background:#0969da;color:#fff;border:0;border-radius:6px;padding:.5rem 1rem;font-size:1rem;text-decoration:none;cursor:pointer}\
label{display:block;margin:.4rem 0}pre{white-space:pre-wrap;word-break:break-all;font-size:.8rem}\
header{display:flex;justify-content:space-between;align-items:center}";

/// A whole page.
pub(crate) fn page(title: &str, header: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{} · dual-auth</title><style>{STYLE}</style></head>\
         <body><header><strong>dual-auth · finance assistant</strong>{header}</header><main>{body}</main></body></html>",
        escape(title)
    )
}

/// The sign-out form, for the header of signed-in pages.
pub(crate) fn sign_out_form(csrf: &str) -> String {
    format!(
        "<form method=\"post\" action=\"/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><button id=\"logout\" type=\"submit\">Sign out</button></form>",
        escape(csrf)
    )
}

/// The home page for a visitor.
pub(crate) fn welcome(provider: &str) -> String {
    page(
        "Welcome",
        "",
        &format!(
            "<section class=\"card\"><h1>An agent that acts for you, with both identities</h1>\
             <p>Sign in with {}, then ask the finance agent to read a report for you. The API it calls sees \
             <em>both</em> the agent and you, and who vouched for you.</p>\
             <p><a id=\"login\" class=\"button\" href=\"/login?return_to=/\">Sign in</a></p></section>",
            escape(provider)
        ),
    )
}

/// Who is signed in, as the page shows it.
pub(crate) struct Person<'a> {
    pub(crate) name: &'a str,
    pub(crate) email: &'a str,
    pub(crate) sub: &'a str,
    pub(crate) provider: &'a str,
}

/// The home page for a signed-in user: the agent's task.
pub(crate) fn task_form(person: &Person<'_>, csrf: &str, agent: &str, guide_note: Option<&str>) -> String {
    let guide = match guide_note {
        None => "<label><input type=\"radio\" name=\"mode\" value=\"self-asserted\"> The guide's self-asserted act \
                 (compatibility mode: only the agent vouches for you)</label>"
            .to_owned(),
        Some(note) => format!(
            "<label class=\"bad\"><input type=\"radio\" name=\"mode\" value=\"self-asserted\" disabled> The guide's self-asserted act: {}</label>",
            escape(note)
        ),
    };
    page(
        "Ask the agent",
        &sign_out_form(csrf),
        &format!(
            "<section class=\"card human\"><h2>Signed in</h2><p id=\"whoami\">You are <strong>{}</strong> ({}), user {} at {}.</p></section>\
             <section class=\"card agent\"><h2>Ask the agent</h2>\
             <form id=\"task\" method=\"post\" action=\"/task\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <p>The agent <strong>{}</strong> will read report <strong>Q4-2025</strong> from the finance API for you. How does it prove it acts for you?</p>\
             <label><input type=\"radio\" name=\"mode\" value=\"token-exchange\" checked> In-session token exchange: the identity provider checks your sign-in (RFC 8693)</label>\
             <label><input type=\"radio\" name=\"mode\" value=\"out-of-session\"> Out-of-session: hand your token to a remote agent, which exchanges it</label>\
             {guide}\
             <p><button id=\"run-task\" type=\"submit\">Ask the agent</button></p></form></section>",
            escape(person.name),
            escape(person.email),
            escape(person.sub),
            escape(person.provider),
            escape(csrf),
            escape(agent),
        ),
    )
}

/// After a sign-in: where to go next. A page, not a redirect, so that the address bar
/// keeps the callback (a person can see what Back would replay).
pub(crate) fn signed_in(person: &Person<'_>, return_to: &str) -> String {
    page(
        "Signed in",
        "",
        &format!(
            "<section class=\"card human\"><h1 id=\"signed-in\">Signed in as {}</h1><p>{} verified your sign-in; its ID token checked out.</p>\
             <p><a id=\"continue\" class=\"button\" href=\"{}\">Continue</a></p></section>",
            escape(person.name),
            escape(person.provider),
            escape(return_to)
        ),
    )
}

/// A refusal: what was refused, why, and that nothing was done.
pub(crate) fn refused(what: &str, why: &str) -> String {
    page(
        "Refused",
        "",
        &format!(
            "<section class=\"card error\"><h1>{}</h1><p id=\"error\">Refused: {}.</p><p id=\"nothing-done\">Nothing was done.</p>\
             <p><a id=\"home\" href=\"/\">Back to the start</a></p></section>",
            escape(what),
            escape(why)
        ),
    )
}

/// After signing out.
pub(crate) fn signed_out() -> String {
    page(
        "Signed out",
        "",
        "<section class=\"card\"><h1 id=\"signed-out\">Signed out</h1><p>Your session here is gone; the agent can no longer act for you from it.</p>\
         <p><a id=\"login\" class=\"button\" href=\"/login?return_to=/\">Sign in again</a></p></section>",
    )
}

fn text<'v>(value: &'v Value, pointer: &str) -> &'v str {
    value.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// What the API saw: the agent and the human side by side, the evidence, the chain.
pub(crate) fn result(person: &Person<'_>, csrf: &str, outcome: &TaskOutcome) -> String {
    let Some(seen) = outcome.seen.as_ref().filter(|_| outcome.succeeded()) else {
        let why = outcome.problem.as_deref().unwrap_or("the finance API gave no answer");
        let body = format!(
            "<section class=\"card error\"><h1>The agent could not do it</h1><p id=\"error\">{}</p>\
             <p id=\"evidence-mode\">Evidence: {}</p><p><a id=\"home\" href=\"/\">Back</a></p></section>",
            escape(why),
            escape(outcome.mode.describe())
        );
        return page("The agent could not do it", &sign_out_form(csrf), &body);
    };
    let agent = text(seen, "/agent/client_id");
    let agent = if agent.is_empty() { text(seen, "/agent/sub") } else { agent };
    let human = text(seen, "/human/sub");
    let vouched_by = text(seen, "/vouched_by");
    let matches = human == person.sub;
    let verdict = if matches {
        "<p id=\"human-match\" class=\"ok\">✓ The API saw the human you are signed in as.</p>"
    } else {
        "<p id=\"human-match\" class=\"bad\">✗ The API saw another human than the one signed in.</p>"
    };
    let optional = |label: &str, value: &str| {
        if value.is_empty() { String::new() } else { format!("<dt>{label}</dt><dd>{}</dd>", escape(value)) }
    };
    let earlier: Vec<String> = seen["chain"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|actor| {
            let id = actor["client_id"].as_str().or_else(|| actor["sub"].as_str()).unwrap_or("?");
            escape(id)
        })
        .collect();
    let body = format!(
        "<h1>What the finance API saw</h1>\
         <div class=\"pair\">\
         <section id=\"agent-card\" class=\"card agent\"><h2>The agent</h2><dl><dt>Client</dt><dd id=\"seen-agent\">{}</dd>\
         <dt>Earlier agents</dt><dd id=\"seen-chain\">{}</dd><dt>Scopes</dt><dd>{}</dd></dl></section>\
         <section id=\"human-card\" class=\"card human\"><h2>The human</h2><dl><dt>Subject</dt><dd id=\"seen-human\">{}</dd>{}{}\
         <dt>Signed in here as</dt><dd>{}</dd></dl></section>\
         </div>\
         <section class=\"card\"><p id=\"evidence-mode\">Evidence: {}</p><p>Vouched for by: <strong id=\"vouched-by\">{}</strong></p>{verdict}{}</section>\
         <section class=\"card\"><details><summary>The API's answer (JSON)</summary><pre id=\"api-json\">{}</pre></details>\
         <p><a id=\"home\" href=\"/\">Ask again</a></p></section>",
        escape(agent),
        if earlier.is_empty() { "none (direct delegation)".to_owned() } else { earlier.join(" → ") },
        escape(&seen["scopes"].as_array().into_iter().flatten().filter_map(Value::as_str).collect::<Vec<_>>().join(" ")),
        escape(human),
        optional("E-mail", text(seen, "/human/email")),
        optional("Name", text(seen, "/human/name")),
        escape(person.name),
        escape(outcome.mode.describe()),
        escape(vouched_by),
        chain_picture(outcome.mode, person.name, human, agent, &earlier),
        escape(&serde_json::to_string_pretty(seen).unwrap_or_default()),
    );
    page("What the API saw", &sign_out_form(csrf), &body)
}

/// The delegation chain as boxes and arrows: who handed what to whom. `earlier` is escaped.
fn chain_picture(mode: Mode, name: &str, human: &str, agent: &str, earlier: &[String]) -> String {
    let short = |id: &str| if id.chars().count() > 18 { format!("{}…", id.chars().take(17).collect::<String>()) } else { id.to_owned() };
    let mut nodes: Vec<(String, String, &str)> = vec![(escape(name), format!("human · {}", escape(&short(human))), "#1a7f37")];
    let mut labels: Vec<&str> = Vec::new();
    match mode {
        Mode::Verified | Mode::Remote => {
            nodes.push(("Identity provider".into(), "verifies the evidence".into(), "#8250df"));
            labels.push(if mode == Mode::Remote { "token, via the app to the agent" } else { "signed in: token" });
        }
        Mode::Guide => {
            nodes.push(("Identity provider".into(), "copies the agent's act".into(), "#bf8700"));
            labels.push("act written by the agent");
        }
    }
    for actor in earlier.iter().rev() {
        nodes.push((actor.clone(), "earlier agent".into(), "#57606a"));
        labels.push("delegates");
    }
    nodes.push((escape(&short(agent)), "agent (client)".into(), "#0969da"));
    labels.push(if mode == Mode::Guide { "token: sub=agent, act=you" } else { "token: sub=you, azp=agent" });
    nodes.push(("Finance API".into(), "verifies both".into(), "#1b1f24"));
    labels.push("calls with the token");
    let width = 200;
    let gap = 60;
    let total = nodes.len() * width + (nodes.len() - 1) * gap;
    let mut svg = format!(
        "<svg id=\"chain\" role=\"img\" aria-label=\"The delegation chain\" viewBox=\"-4 0 {} 130\" width=\"100%\" xmlns=\"http://www.w3.org/2000/svg\" font-family=\"system-ui,sans-serif\">\
         <defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\"><path d=\"M0,0L10,5L0,10z\" fill=\"#57606a\"/></marker></defs>",
        total + 8
    );
    for (i, (title, subtitle, colour)) in nodes.iter().enumerate() {
        let x = i * (width + gap);
        svg.push_str(&format!(
            "<rect x=\"{x}\" y=\"40\" width=\"{width}\" height=\"70\" rx=\"10\" fill=\"#fff\" stroke=\"{colour}\" stroke-width=\"3\"/>\
             <text x=\"{}\" y=\"70\" text-anchor=\"middle\" font-size=\"16\" font-weight=\"600\" fill=\"{colour}\">{title}</text>\
             <text x=\"{}\" y=\"94\" text-anchor=\"middle\" font-size=\"12\" fill=\"#57606a\">{subtitle}</text>",
            x + width / 2,
            x + width / 2
        ));
        if let Some(label) = labels.get(i).filter(|_| i + 1 < nodes.len()) {
            let from = x + width;
            svg.push_str(&format!(
                "<line x1=\"{from}\" y1=\"75\" x2=\"{}\" y2=\"75\" stroke=\"#57606a\" stroke-width=\"2\" marker-end=\"url(#arrow)\"/>\
                 <text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"11\" fill=\"#57606a\">{}</text>",
                from + gap - 2,
                from + gap / 2,
                if i % 2 == 0 { 30 } else { 20 },
                escape(label)
            ));
        }
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untrusted_text_is_escaped() {
        let page = refused("Sign-in refused", "<img src=x onerror=alert(1)>");
        assert!(page.contains("&lt;img src=x onerror=alert(1)&gt;") && !page.contains("<img"), "{page}");
    }

    #[test]
    fn the_chain_picture_names_each_hop() {
        let svg = chain_picture(Mode::Verified, "Alice <A>", "f123", "finance-agent", &["planner".into()]);
        for part in ["Alice &lt;A&gt;", "Identity provider", "planner", "finance-agent", "Finance API", "token: sub=you, azp=agent"] {
            assert!(svg.contains(part), "{part} missing: {svg}");
        }
        assert_eq!(svg.matches("<rect").count(), 5);
        assert_eq!(svg.matches("<line").count(), 4);
    }
}
