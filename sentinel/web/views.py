"""Sign-in, sign-out and the home page."""

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
from flask_login import UserMixin, current_user, login_required, login_user, logout_user

from .. import accounts, instance, notifications, sessions
from ..api.auth import recent_sessions
from ..errors import Malformed, NotFound, Throttled, Unauthorized
from ..extensions import login_manager, postgres
from .forms import LoginForm

blueprint = Blueprint("web", __name__, url_prefix="/ui")
root = Blueprint("root", __name__)

login_manager.login_view = "web.login"
login_manager.login_message = "Please sign in."


class SignedIn(UserMixin):
    """The flask-login user: its id is the Sentinel session id, so signing out
    or expiring on the server ends the browser's session too."""

    def __init__(self, session_id, username):
        self.session_id = session_id
        self.username = username

    def get_id(self):
        return self.session_id


def settings():
    return current_app.config["SENTINEL"]


@login_manager.user_loader
def load_user(session_id):
    try:
        found = sessions.resolve(session_id, settings()["session_timeout"], recent_sessions())
    except (Malformed, Unauthorized):
        return None
    return SignedIn(session_id, found.username)


@blueprint.app_context_processor
def layout_context():
    return {"nav": current_app.extensions["sentinel.nav"]}


@root.get("/")
def index():
    return redirect(url_for("web.home"))


@blueprint.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("web.home"))
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
            session_id = sessions.open_session(user, address, settings()["session_timeout"])
            session.permanent = True
            login_user(SignedIn(session_id, user.username))
            notifications.record(user.username, "Login")
            return redirect(url_for("web.home"))
    elif request.method == "POST":
        status = 400
    return render_template("login.html", form=form), status


@blueprint.post("/logout")
@login_required
def logout():
    # CSRFProtect has checked the form's token before this runs.
    sessions.close_session(current_user.session_id, recent_sessions())
    notifications.record(current_user.username, "Logout")
    logout_user()
    flash("Signed out.")
    return redirect(url_for("web.login"))


@blueprint.get("/")
@login_required
def home():
    facts = instance.discover(postgres.pool, settings(), current_app.extensions["sentinel.plugins"])
    return render_template("home.html", facts=facts, notifications=notifications.recent(limit=20))
