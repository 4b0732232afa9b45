//! Users, for Administrators: who may sign in, with which role.

use std::sync::Arc;

use axum::Form;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use crate::web::auth::Signed;
use crate::web::html::{self, Nav, layout};
use crate::web::users::Role;
use crate::web::{AppState, PageError};

pub(crate) async fn users(State(state): State<Arc<AppState>>, Signed(viewer): Signed) -> Result<Markup, PageError> {
    viewer.require_admin("Managing users")?;
    let users = state.users.list()?;
    Ok(layout(
        "Users",
        Some(&viewer),
        Nav::Users,
        html! {
            div.scroll { table {
                caption { "Who may sign in" }
                thead { tr { th scope="col" { "Username" } th scope="col" { "Role" } th scope="col" { "Action" } } }
                tbody { @for u in &users { tr {
                    td { (u.name) } td { (u.role.as_str()) }
                    td { @if u.name != viewer.name {
                        form.inline method="post" action="/users/remove" {
                            (html::csrf(&viewer))
                            input type="hidden" name="name" value=(u.name);
                            button type="submit" { "Remove " (u.name) }
                        }
                    } }
                } } }
            } }
            h2 { "Add a user" }
            form.adduser method="post" action="/users" {
                (html::csrf(&viewer))
                div.field { label for="new-name" { "Username" } input #new-name name="name" required; }
                div.field { label for="new-role" { "Role" } select #new-role name="role" {
                    option value="manager" { "Manager (view, export)" }
                    option value="administrator" { "Administrator (also retry, manage users)" }
                } }
                div.field { label for="new-password" { "Password" } input #new-password type="password" name="password" autocomplete="new-password" minlength="8" required; }
                button type="submit" { "Add user" }
            }
            p.hint { "Passwords are changed with " code { "helpscout-etl users passwd NAME" } "." }
        },
    ))
}

#[derive(Deserialize)]
pub(crate) struct AddUser {
    csrf: String,
    name: String,
    role: String,
    password: String,
}

pub(crate) async fn add_user(State(state): State<Arc<AppState>>, Signed(viewer): Signed, Form(f): Form<AddUser>) -> Result<Response, PageError> {
    viewer.check(&f.csrf)?;
    viewer.require_admin("Managing users")?;
    let role = Role::parse(&f.role).ok_or_else(|| PageError::BadRequest(format!("{:?} is not a role: manager or administrator.", f.role)))?;
    let users = state.users.clone();
    tokio::task::spawn_blocking(move || users.add(f.name.trim(), role, &f.password))
        .await
        .map_err(|e| PageError::Internal(e.to_string()))?
        .map_err(|e| PageError::BadRequest(e.to_string()))?;
    Ok(Redirect::to("/users").into_response())
}

#[derive(Deserialize)]
pub(crate) struct RemoveUser {
    csrf: String,
    name: String,
}

pub(crate) async fn remove_user(State(state): State<Arc<AppState>>, Signed(viewer): Signed, Form(f): Form<RemoveUser>) -> Result<Response, PageError> {
    viewer.check(&f.csrf)?;
    viewer.require_admin("Managing users")?;
    state.users.remove(&f.name).map_err(|e| PageError::BadRequest(e.to_string()))?;
    Ok(Redirect::to("/users").into_response())
}
