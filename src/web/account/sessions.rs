//! `POST /account/sessions/end-others`: sign out every other browser of the signed-in user.

use rocket::response::{Flash, Redirect};
use rocket::{State, post};

use crate::app::App;
use crate::services::account;
use crate::web::page::WebError;
use crate::web::visitor::{Checked, Member, NoFields};

#[post("/account/sessions/end-others", data = "<_form>")]
pub async fn end_other_sessions_submit(
    app: &State<App>,
    m: Member,
    _form: Checked<NoFields>,
) -> Result<Flash<Redirect>, WebError> {
    let n = account::end_other_sessions(app, &m.0.caller).await?;
    let message = match n {
        0 => "There were no other sessions.".to_string(),
        1 => "Signed out 1 other session.".to_string(),
        n => format!("Signed out {n} other sessions."),
    };
    Ok(Flash::success(Redirect::to("/account"), message))
}
