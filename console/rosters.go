package console

import (
	"context"
	"net/http"

	"github.com/jingminhub/jingmin/console/rosterpage"
	"github.com/jingminhub/jingmin/store"
)

// sessionKey carries the signed-in session from the console's sign-in check
// to the roster and directory pages, which ask the console (rosterAccess)
// who is signed in and what they may do.
type sessionKey struct{}

// rosterAccess is the console's answer to the roster and directory pages:
// the same accounts, stations and roles as every other page.
type rosterAccess struct{}

var _ rosterpage.Access = rosterAccess{}

func (rosterAccess) Viewer(r *http.Request) (rosterpage.Viewer, bool) {
	sess, ok := r.Context().Value(sessionKey{}).(*session)
	if !ok || sess == nil {
		return rosterpage.Viewer{}, false
	}
	a := sess.account
	v := rosterpage.Viewer{Name: a.Name()}
	switch {
	case a.Officer != nil:
		v.OfficerID, v.StationID = a.Officer.ID, a.Officer.StationID
	default:
		if ids := a.Stations(); len(ids) > 0 {
			v.StationID = ids[0]
		}
	}
	return v, true
}

// Allowed: everyone sees their own station's roster and directory (district
// and local admins every station's); an officer asks and answers swaps and
// keeps a calendar feed of their own station only; changes to the roster
// and the directory, and approving swaps, are for the station's admins and
// district admins, once past their second factor (the console's sign-in
// check asks for it before any of these pages).
func (rosterAccess) Allowed(r *http.Request, v rosterpage.Viewer, act rosterpage.Action, stationID uint) bool {
	sess, ok := r.Context().Value(sessionKey{}).(*session)
	if !ok || sess == nil {
		return false
	}
	a := sess.account
	if !a.MaySee(stationID) {
		return false
	}
	switch act {
	case rosterpage.ViewRoster, rosterpage.ViewDirectory:
		return true
	case rosterpage.RequestSwap, rosterpage.OwnFeed:
		return a.Officer != nil && a.Officer.StationID == stationID
	case rosterpage.EditRoster, rosterpage.ApproveSwap, rosterpage.EditDirectory:
		return a.IsAdmin() && (a.DistrictWide() || a.Officer.HasRole(store.RoleAdmin))
	}
	return false
}

// rosterPages builds the roster and directory pages over the console's rules.
func (s *Server) rosterPages() (*rosterpage.Handler, error) {
	return rosterpage.New(s.opts.Rules, s.opts.Store, rosterAccess{}, rosterpage.Options{
		Prefix: "/", Location: s.opts.Rules.Location(), Now: s.opts.Rules.Clock, Log: s.opts.Log,
	})
}

// mountRoster routes the roster and directory pages behind the console's
// sign-in (and second-factor) check; the calendar feeds answer without a
// session, by their secret URL, as calendar apps cannot sign in.
func (s *Server) mountRoster(mux *http.ServeMux, rp http.Handler) {
	signed := s.signedIn(func(w http.ResponseWriter, r *http.Request, sess *session) {
		rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), sessionKey{}, sess)))
	}, true)
	for _, p := range []string{"/roster", "/roster/", "/directory", "/directory/"} {
		mux.Handle(p, signed)
	}
	mux.Handle("GET /roster.css", rp)
	mux.Handle("GET /ical/", rp)
}
