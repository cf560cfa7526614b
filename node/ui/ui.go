package ui

import (
	"bytes"
	"embed"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"

	"peer/node/api"
)

//go:embed assets
var assets embed.FS

var pages = template.Must(template.ParseFS(assets, "assets/*.html"))

// Register adds the dashboard's routes to s: the page (the app with a session, else the login
// form), the code and token logins, and the static assets.
func Register(s *api.Server) {
	static, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded tree has the directory: a build without it does not compile
	}
	files := http.StripPrefix("/ui/assets/", http.FileServerFS(static))
	s.HandlePublic("GET /ui/assets/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	}))
	s.HandlePublic("GET /{$}", http.RedirectHandler(api.PathUI, http.StatusSeeOther))
	s.HandlePublic("GET /ui", http.RedirectHandler(api.PathUI, http.StatusSeeOther))
	s.HandlePublic("GET "+api.PathUI+"{$}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, ok := s.SessionOf(r)
		if !ok {
			render(w, http.StatusOK, "login.html", loginPage{})
			return
		}
		render(w, http.StatusOK, "index.html", appPage{CSRF: sess.CSRF, CSRFHeader: api.CSRFHeader})
	}))
	// A GET with a code: what `peer ui` opens. The redirect takes the code out of the address
	// bar and the history.
	s.HandlePublic("GET "+api.PathUILogin, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.RedeemCode(w, r.URL.Query().Get("code")) {
			render(w, http.StatusUnauthorized, "login.html", loginPage{Error: "This login link has expired or was used already: run peer ui again, or enter the API token."})
			return
		}
		http.Redirect(w, r, api.PathUI, http.StatusSeeOther)
	}))
	s.HandlePublic("POST "+api.PathUILogin, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.LoginWithToken(w, r.PostFormValue("token")) {
			render(w, http.StatusUnauthorized, "login.html", loginPage{Error: "That is not this daemon's API token."})
			return
		}
		http.Redirect(w, r, api.PathUI, http.StatusSeeOther)
	}))
}

type loginPage struct{ Error string }

type appPage struct{ CSRF, CSRFHeader string }

func render(w http.ResponseWriter, code int, name string, data any) {
	var b bytes.Buffer
	if err := pages.ExecuteTemplate(&b, name, data); err != nil {
		slog.Default().With("pkg", "ui").Error("rendering a page", "page", name, "err", err)
		api.WriteError(w, http.StatusInternalServerError, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(b.Bytes())
}
