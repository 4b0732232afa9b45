//! Reading submissions and customer records from what callers send: an HTTP form post (JSON
//! or form-encoded), a JSON Lines or CSV file. Structural problems are errors for the caller;
//! content problems (a bad email, a missing subject) are accepted and fail in the log, where an
//! Administrator can correct and retry them.

use serde_json::Value;

use crate::catalog::outbound::{CustomerRecord, Submission};

/// Fields a form may send besides its own: at most this many, each at most this long.
pub const MAX_FIELDS: usize = 50;
pub const MAX_FIELD_CHARS: usize = 20_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntakeError {
    #[error("The body is not valid JSON: {0}")]
    Json(String),
    #[error("A submission must be a JSON object of text fields (field {0:?} is not text).")]
    NotText(String),
    #[error("A submission must be a JSON object of text fields.")]
    NotAnObject,
    #[error("Too many fields ({0}; at most {MAX_FIELDS}).")]
    TooManyFields(usize),
    #[error("Field {0:?} is longer than {MAX_FIELD_CHARS} characters.")]
    TooLong(String),
    #[error("`submission_id` must be 1–200 characters of letters, digits, '-', '_', '.' or ':' ({0:?}).")]
    BadId(String),
    #[error("The content type {0:?} is not taken: send application/json or application/x-www-form-urlencoded.")]
    ContentType(String),
    #[error("Line {line}: {reason}")]
    Line { line: usize, reason: String },
}

/// The fields of a JSON object (text, numbers and booleans taken as text).
pub fn json_fields(body: &[u8]) -> Result<Vec<(String, String)>, IntakeError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| IntakeError::Json(e.to_string()))?;
    object_fields(&value)
}

fn object_fields(value: &Value) -> Result<Vec<(String, String)>, IntakeError> {
    let Value::Object(map) = value else { return Err(IntakeError::NotAnObject) };
    map.iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k.clone(), s.clone())),
            Value::Number(n) => Ok((k.clone(), n.to_string())),
            Value::Bool(b) => Ok((k.clone(), b.to_string())),
            _ => Err(IntakeError::NotText(k.clone())),
        })
        .collect()
}

/// The fields of a form-encoded body.
pub fn form_fields(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

fn valid_id(id: &str) -> bool {
    (1..=200).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
}

/// A submission from a form's fields. Returns it and whether the caller gave its id (a given id
/// is how repeats are told apart from two real submissions with the same words).
pub fn submission(form: &str, fields: Vec<(String, String)>) -> Result<(Submission, bool), IntakeError> {
    if fields.len() > MAX_FIELDS {
        return Err(IntakeError::TooManyFields(fields.len()));
    }
    let mut s = Submission { id: String::new(), form: form.into(), email: String::new(), name: String::new(), subject: String::new(), message: String::new(), extra: Vec::new() };
    let (mut first, mut last) = (String::new(), String::new());
    for (key, value) in fields {
        if value.chars().count() > MAX_FIELD_CHARS {
            return Err(IntakeError::TooLong(key));
        }
        let value = value.trim().to_string();
        match key.to_ascii_lowercase().as_str() {
            "submission_id" | "id" => s.id = value,
            "email" => s.email = value,
            "name" => s.name = value,
            "first_name" | "firstname" => first = value,
            "last_name" | "lastname" => last = value,
            "subject" => s.subject = value,
            "message" | "body" | "text" => s.message = value,
            _ => s.extra.push((key, value)),
        }
    }
    if s.name.is_empty() {
        s.name = format!("{first} {last}").trim().to_string();
    }
    let given = !s.id.is_empty();
    if given && !valid_id(&s.id) {
        return Err(IntakeError::BadId(s.id));
    }
    if !given {
        s.id = format!("{}-{:08x}", chrono::Utc::now().format("%Y%m%dT%H%M%S%6fZ"), rand::random::<u32>());
    }
    Ok((s, given))
}

/// A customer record from its fields (`email`, `first_name`, `last_name`, `job_title`,
/// `organization`, `location`, `background`; camelCase accepted too).
pub fn customer(fields: Vec<(String, String)>) -> Result<CustomerRecord, IntakeError> {
    let mut c = CustomerRecord::default();
    for (key, value) in fields {
        if value.chars().count() > MAX_FIELD_CHARS {
            return Err(IntakeError::TooLong(key));
        }
        let value = Some(value.trim().to_string()).filter(|v| !v.is_empty());
        let normalized: String = key.chars().filter(|c| *c != '_').collect::<String>().to_ascii_lowercase();
        match normalized.as_str() {
            "email" => c.email = value.unwrap_or_default(),
            "firstname" => c.first_name = value,
            "lastname" => c.last_name = value,
            "jobtitle" => c.job_title = value,
            "organization" => c.organization = value,
            "location" => c.location = value,
            "background" => c.background = value,
            _ => return Err(IntakeError::NotText(format!("{key} (not a customer field; the fields are email, first_name, last_name, job_title, organization, location, background)"))),
        }
    }
    Ok(c)
}

/// The records of a file: JSON Lines (one object a line) or CSV with a header (by extension,
/// or by the first character). Bytes that are not UTF-8 are kept as replacement characters,
/// so the name check reports them instead of the file being refused whole.
pub fn file_records(name: &str, bytes: &[u8]) -> Result<Vec<Vec<(String, String)>>, IntakeError> {
    let text = String::from_utf8_lossy(bytes);
    let csv = name.ends_with(".csv") || !(name.ends_with(".jsonl") || name.ends_with(".json") || text.trim_start().starts_with('{'));
    if csv {
        let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(text.as_bytes());
        let headers = reader.headers().map_err(|e| IntakeError::Line { line: 1, reason: e.to_string() })?.clone();
        let mut out = Vec::new();
        for (i, record) in reader.records().enumerate() {
            let record = record.map_err(|e| IntakeError::Line { line: i + 2, reason: e.to_string() })?;
            out.push(headers.iter().zip(record.iter()).filter(|(_, v)| !v.is_empty()).map(|(k, v)| (k.to_string(), v.to_string())).collect());
        }
        return Ok(out);
    }
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| {
            let value: Value = serde_json::from_str(line).map_err(|e| IntakeError::Line { line: i + 1, reason: format!("not JSON: {e}") })?;
            object_fields(&value).map_err(|e| IntakeError::Line { line: i + 1, reason: e.to_string() })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn a_form_post_becomes_a_submission_with_its_other_fields_kept() {
        let (s, given) = submission("contact", fields(&[("email", " jane@example.com "), ("first_name", "Jane"), ("last_name", "Doe"), ("subject", "Hi"), ("message", "Text"), ("order", "42")])).unwrap();
        assert!(!given);
        assert_eq!((s.email.as_str(), s.name.as_str(), s.extra.clone()), ("jane@example.com", "Jane Doe", vec![("order".to_string(), "42".to_string())]));
        let (s, given) = submission("contact", fields(&[("submission_id", "wh-1"), ("email", "a@b.co")])).unwrap();
        assert!(given);
        assert_eq!(s.id, "wh-1");
        assert_eq!(submission("c", fields(&[("submission_id", "a b")])).unwrap_err(), IntakeError::BadId("a b".into()));
        assert!(matches!(json_fields(br#"{"email": ["x"]}"#), Err(IntakeError::NotText(k)) if k == "email"));
        assert_eq!(json_fields(b"[1]"), Err(IntakeError::NotAnObject));
        assert_eq!(form_fields(b"email=a%40b.co&subject=Hi+there"), fields(&[("email", "a@b.co"), ("subject", "Hi there")]));
        let many: Vec<(String, String)> = (0..51).map(|i| (format!("f{i}"), "x".into())).collect();
        assert_eq!(submission("c", many).unwrap_err(), IntakeError::TooManyFields(51));
    }

    #[test]
    fn files_are_read_as_json_lines_or_csv_and_bad_bytes_survive_for_the_name_check() {
        let jsonl = file_records("a.jsonl", b"{\"email\":\"a@b.co\",\"subject\":\"S\"}\n\n{\"email\":\"c@d.co\"}\n").unwrap();
        assert_eq!(jsonl.len(), 2);
        assert!(matches!(file_records("a.jsonl", b"{\"email\":1}\nnot json\n"), Err(IntakeError::Line { line: 2, .. })));
        let csv = file_records("a.csv", b"email,name,subject\na@b.co,Jos\xe9,Hi\n").unwrap();
        assert_eq!(csv[0][1], ("name".to_string(), "Jos\u{FFFD}".to_string()));
        let c = customer(fields(&[("email", "a@b.co"), ("firstName", "Ann"), ("job_title", "CTO")])).unwrap();
        assert_eq!((c.first_name.as_deref(), c.job_title.as_deref()), (Some("Ann"), Some("CTO")));
        assert!(customer(fields(&[("shoe_size", "9")])).is_err());
    }
}
