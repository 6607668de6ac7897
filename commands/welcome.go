package commands

import (
	"fmt"

	"github.com/jingminhub/jingmin/store"
)

// Welcome is the text that greets new members of a group (a WeCom customer
// group's welcome message): who the group's officer is, and the
// customer-service link through which a resident asks one to one, so the
// question is filed as this group's.
func (h *Hub) Welcome(platform, chatID, link string) (string, error) {
	d := h.dir.Load()
	g := d.group(platform, chatID)
	if g == nil {
		return "", fmt.Errorf("no group %s on %s in the directory", chatID, platform)
	}
	var officer *store.Officer
	if g.OfficerID != nil {
		officer = d.officers[*g.OfficerID]
	}
	return render(d.template("customer_group_welcome"), "group", g.Name, "officer", title(officer), "link", link), nil
}
