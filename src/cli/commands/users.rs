//! `users add | remove | list | passwd`: who may sign in to the web page. Passwords are asked
//! for on a terminal (twice) or read from the first line of standard input; never arguments.

use std::io::{BufRead, IsTerminal, Write};

use crate::cli::args::{RoleArg, UsersAction, UsersArgs};
use crate::cli::config;
use crate::cli::exit::Exit;
use crate::cli::render;
use crate::store::{Cell, Grid};
use crate::web::{self, Role, UsersError};

fn password(name: &str) -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("Password for {name}: "))?;
        let again = rpassword::prompt_password("The same password again: ")?;
        if first != again {
            anyhow::bail!(clap::Error::raw(clap::error::ErrorKind::InvalidValue, "The two passwords differ; run the command again."));
        }
        Ok(first)
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        Ok(line.trim_end_matches(['\n', '\r']).to_string())
    }
}

pub fn run(args: &UsersArgs, out: &mut dyn Write) -> anyhow::Result<Exit> {
    let outputs = config::load_outputs(args.output.config.as_deref(), &args.output.overrides())?;
    let store = web::user_store(&outputs);
    // clap requires the name (and the role for `add`) where they are needed.
    let name = args.name.clone().unwrap_or_default();
    let name = &name;
    match args.action {
        UsersAction::Add => {
            let role = match args.role {
                Some(RoleArg::Administrator) => Role::Administrator,
                _ => Role::Manager,
            };
            if store.get(name)?.is_some() {
                return Err(UsersError::Exists(name.to_string()).into());
            }
            store.add(name, role, &password(name)?)?;
            writeln!(out, "Added {name} ({}); they sign in at the page `helpscout-etl serve` serves.", role.as_str())?;
        }
        UsersAction::Remove => {
            store.remove(name)?;
            writeln!(out, "Removed {name}.")?;
        }
        UsersAction::Passwd => {
            if store.get(name)?.is_none() {
                return Err(UsersError::Unknown(name.to_string()).into());
            }
            store.set_password(name, &password(name)?)?;
            writeln!(out, "Changed the password of {name}.")?;
        }
        UsersAction::List => {
            let users = store.list()?;
            if args.output.json {
                let list: Vec<serde_json::Value> = users.iter().map(|u| serde_json::json!({"name": u.name, "role": u.role})).collect();
                write!(out, "{}", render::json(&list))?;
            } else if users.is_empty() {
                writeln!(out, "No users yet: `helpscout-etl users add NAME --role administrator`.")?;
            } else {
                let grid = Grid {
                    columns: vec!["user".into(), "role".into()],
                    rows: users.iter().map(|u| vec![Cell::Text(u.name.clone()), Cell::Text(u.role.as_str().into())]).collect(),
                };
                write!(out, "{}", render::text(&grid))?;
            }
        }
    }
    Ok(Exit::Success)
}
