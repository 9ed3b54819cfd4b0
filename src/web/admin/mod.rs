//! Admin pages, all behind the `Staff` guard: the index of admin sections, the collections
//! editor (fields, rules, indexes), users, the audit trail, jobs and backups. Handlers parse
//! the form, call a service and redirect with a flash message, or show the page again with
//! the service's messages beside the inputs.

mod audit;
mod backups;
mod collection_editor;
mod collection_fields;
mod collection_indexes;
mod collection_lifecycle;
mod collection_new;
mod collection_rules;
mod collections_list;
mod field_drop;
mod field_form;
mod form_errors;
mod jobs;
mod patches;
mod user_actions;
mod user_page;
mod users_list;

use askama::Template;
use rocket::{Route, get};

use super::page::{Layout, Page, WebError, render};
use super::visitor::Staff;

#[derive(Template)]
#[template(path = "admin/index.html")]
struct AdminIndexPage {
    layout: Layout,
}

#[get("/admin")]
pub fn admin_index(s: Staff) -> Result<Page, WebError> {
    render(&AdminIndexPage {
        layout: s.0.layout("Admin"),
    })
}

/// `2026-05-01T12:00:00.000Z` → `2026-05-01 12:00:00 UTC` (anything else as stored).
fn readable_time(stored: &str) -> String {
    match crate::time::parse(stored) {
        Some(t) => t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        None => stored.to_string(),
    }
}

/// The admin section's pages and forms (the index is mounted with the site's other pages).
pub fn routes() -> Vec<Route> {
    rocket::routes![
        collections_list::collections_page,
        collection_new::new_collection_page,
        collection_new::create_collection_submit,
        collection_editor::collection_page,
        collection_fields::add_field_submit,
        collection_fields::field_edit_page,
        collection_fields::edit_field_submit,
        collection_fields::rename_field_submit,
        field_drop::drop_field_page,
        field_drop::drop_field_submit,
        collection_rules::save_rules_submit,
        collection_indexes::add_index_submit,
        collection_indexes::drop_index_submit,
        collection_lifecycle::rename_collection_submit,
        collection_lifecycle::delete_collection_page,
        collection_lifecycle::delete_collection_submit,
        users_list::users_list_page,
        users_list::create_user_submit,
        user_page::user_detail_page,
        user_actions::change_role_submit,
        user_actions::set_disabled_submit,
        user_actions::reset_password_submit,
        user_actions::end_sessions_submit,
        user_actions::delete_user_page,
        user_actions::delete_user_submit,
        audit::audit_page,
        jobs::jobs_page,
        jobs::run_job_submit,
        backups::backups_page,
        backups::back_up_now_submit,
    ]
}

#[cfg(test)]
mod tests {
    #[test]
    fn stored_times_read_as_utc() {
        assert_eq!(
            super::readable_time("2026-05-01T14:00:00.123+02:00"),
            "2026-05-01 12:00:00 UTC"
        );
        assert_eq!(super::readable_time("yesterday"), "yesterday");
    }
}
