//! The server-rendered site: askama pages over the same services as the API, complete without
//! JavaScript. Every form carries a CSRF token and answers with a redirect (post/redirect/get);
//! GET never changes anything; pages are never cached; errors outside `/api` are pages.

mod account;
mod admin;
mod assets;
mod auth_pages;
mod home;
mod page;
mod records;
mod visitor;

use rocket::{Build, Rocket};

use crate::observe::traced;

pub use assets::url as asset_url;
pub use visitor::same_token;

/// Mount every page, the static files and the HTML catchers.
pub fn mount(rocket: Rocket<Build>) -> Rocket<Build> {
    rocket
        .mount(
            "/",
            traced(rocket::routes![
                assets::asset,
                home::home,
                admin::admin_index,
                auth_pages::sign_in_page,
                auth_pages::sign_in_submit,
                auth_pages::sign_out,
                auth_pages::setup_page,
                auth_pages::setup_submit,
                records::records_page,
                records::view_record_page,
                records::new_record_page,
                records::new_record_submit,
                records::edit_record_page,
                records::edit_record_submit,
                records::delete_record_page,
                records::delete_record_submit,
                account::account,
                account::password::change_password_submit,
                account::sessions::end_other_sessions_submit,
                account::totp::start_totp_submit,
                account::totp::totp_setup,
                account::totp::totp_qr,
                account::totp::confirm_totp_submit,
                account::totp::disable_totp_submit,
                account::tokens::create_token_submit,
                account::tokens::revoke_token_submit,
                account::sign_in_totp::sign_in_totp_page,
                account::sign_in_totp::sign_in_totp_submit,
            ]),
        )
        .mount("/", traced(admin::routes()))
        .register("/", rocket::catchers![page::html_catcher])
}
