"""The web UI's sign-in and sign-out pages."""

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import UserMixin, current_user, login_user, logout_user

from ..contract import HTML, STRING, describe
from ..core import notifications
from ..errors import Malformed, NotFound, Throttled, Unauthorized
from ..extensions import login_manager
from . import accounts, sessions
from .access import signed_in
from .forms import LoginForm

blueprint = Blueprint("signin", __name__, url_prefix="/ui")

login_manager.login_view = "signin.login"
login_manager.login_message = "Please sign in."

PAGE = {200: (HTML, STRING)}


class SignedIn(UserMixin):
    """The flask-login user: its id is the reference of a web UI sign-in kept
    on the server (never an API session id), so signing out or expiring there
    ends the browser's session too."""

    def __init__(self, reference, username, role):
        self.reference = reference
        self.username = username
        self.role = role

    @property
    def is_admin(self):
        return self.role == accounts.ADMIN

    def get_id(self):
        return self.reference


def settings():
    return current_app.config["SENTINEL"]


@login_manager.user_loader
def load_user(reference):
    try:
        found = sessions.resolve_ui(reference, settings()["session_timeout"])
    except (Malformed, Unauthorized):
        return None
    return SignedIn(reference, found.username, found.role)


@blueprint.route("/login", methods=["GET", "POST"])
@describe(
    "The sign-in page, and signing in from its form",
    answers={**PAGE, 302: None},
    errors=(400, 401, 429),
    form={"username": STRING, "password": STRING, "csrf_token": STRING},
)
def login():
    if current_user.is_authenticated:
        return redirect(url_for("home.home"))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        address = request.remote_addr or "unknown"
        try:
            user = accounts.authenticate(
                form.username.data, form.password.data, address, settings()
            )
        except (NotFound, Malformed):
            form.form_errors.append("Invalid username or password.")
            status = 401
        except Throttled as exc:
            form.form_errors.append(
                f"Too many failed attempts; try again in {exc.retry_after} seconds."
            )
            status = 429
        else:
            reference = sessions.open_ui_session(user, address, settings()["session_timeout"])
            session.permanent = True
            login_user(SignedIn(reference, user.username, user.role))
            notifications.record(user.username, "Login")
            return redirect(url_for("home.home"))
    elif request.method == "POST":
        status = 400
    return render_template("login.html", form=form), status


@blueprint.post("/logout")
@signed_in
@describe("Sign out (a form with its CSRF token)", answers={302: None}, errors=(400,))
def logout():
    # CSRFProtect has checked the form's token before this runs.
    sessions.close_ui_session(current_user.reference)
    notifications.record(current_user.username, "Logout")
    logout_user()
    flash("Signed out.")
    return redirect(url_for("signin.login"))
