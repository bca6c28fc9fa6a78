package chatclient

import (
	"fmt"
	"os"
	"strings"

	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"
)

type styles struct {
	r                                      *lipgloss.Renderer
	header, dim, system, err, own, other   lipgloss.Style
	direct, critical, warning, acked, done lipgloss.Style
	selected, unread, sep, online, offline lipgloss.Style
}

// newStyles returns the colours; with noColor (NO_COLOR is set) every
// style is plain text and bold is the only emphasis.
func newStyles(noColor bool) styles {
	r := lipgloss.NewRenderer(os.Stdout)
	if noColor {
		r.SetColorProfile(termenv.Ascii)
	} else {
		// The profile of a terminal the program runs in, not of the test
		// or pipe its output may end up in.
		r.SetColorProfile(termenv.ANSI256)
	}
	c := func(col string) lipgloss.Style { return r.NewStyle().Foreground(lipgloss.Color(col)) }
	return styles{
		r:        r,
		header:   r.NewStyle().Bold(true),
		dim:      c("245"),
		system:   c("244").Italic(!noColor),
		err:      c("196").Bold(true),
		own:      c("39"),
		other:    c("252"),
		direct:   c("213"),
		critical: c("196").Bold(true),
		warning:  c("214"),
		acked:    c("111"),
		done:     c("71"),
		selected: r.NewStyle().Bold(true).Reverse(true),
		unread:   c("220").Bold(true),
		sep:      c("240"),
		online:   c("71"),
		offline:  c("214"),
	}
}

func (m *Model) lineStyle(k lineKind) lipgloss.Style {
	switch k {
	case kindError:
		return m.st.err
	case kindOwn:
		return m.st.own
	case kindOther:
		return m.st.other
	case kindDirect:
		return m.st.direct
	case kindAlert:
		return m.st.warning
	}
	return m.st.system
}

func (m *Model) alertStyle(a Alert) lipgloss.Style {
	switch {
	case a.State == "resolved":
		return m.st.done
	case a.State == "acknowledged":
		return m.st.acked
	case a.Severity == "critical":
		return m.st.critical
	}
	return m.st.warning
}

// View implements tea.Model.
func (m Model) View() string {
	if m.screen == screenLogin {
		return m.loginView()
	}
	return m.mainView()
}

func (m Model) loginView() string {
	var b strings.Builder
	b.WriteString(m.st.header.Render("watchroom chat") + "  " + m.st.dim.Render("log in to a Watchroom server") + "\n\n")
	for i := range m.fields {
		b.WriteString(m.fields[i].View() + "\n")
	}
	b.WriteString("\n")
	switch {
	case m.busy:
		b.WriteString(m.st.dim.Render("logging in…"))
	case m.loginErr != "":
		b.WriteString(m.st.err.Render(m.loginErr))
	default:
		b.WriteString(m.st.dim.Render("Enter: next field / log in · Tab: move · Ctrl+C: quit"))
	}
	return b.String() + "\n"
}

func (m *Model) sidebarWidth() int {
	if m.width < 70 {
		return 16
	}
	return 24
}

// alertRows is how many alerts the alerts pane shows.
func (m *Model) alertRows() int {
	n := min(len(m.alerts), 3)
	if m.height >= 40 {
		n = min(len(m.alerts), 8)
	}
	return max(n, 1)
}

// msgHeight is the height of the messages pane: the screen less the
// header, the alerts pane (title and rows), the typing line, the input and
// the status line.
func (m *Model) msgHeight() int {
	return max(3, m.height-1-(1+m.alertRows())-1-1-1)
}

func (m *Model) msgWidth() int { return max(20, m.width-m.sidebarWidth()-1) }

// wrapped renders the current view's lines, wrapped to the pane.
func (m *Model) wrapped() []string {
	w := m.msgWidth()
	var out []string
	for _, l := range m.cur().lines {
		prefix := l.ts.Local().Format("15:04") + " "
		text := l.text
		switch l.kind {
		case kindOwn, kindOther, kindDirect:
			text = l.user + ": " + text
		case kindSystem:
			text = "* " + text
		case kindError:
			text = "! " + text
		}
		body := m.st.r.NewStyle().Width(w - len(prefix)).Render(text)
		for i, part := range strings.Split(body, "\n") {
			p := strings.Repeat(" ", len(prefix))
			if i == 0 {
				p = m.st.dim.Render(prefix)
			}
			out = append(out, p+m.lineStyle(l.kind).Render(strings.TrimRight(part, " ")))
		}
	}
	return out
}

func (m *Model) maxScroll() int { return max(0, len(m.wrapped())-m.msgHeight()) }

func (m Model) mainView() string {
	h := m.msgHeight()
	sw := m.sidebarWidth()

	// Header.
	title := "#" + m.current
	if strings.HasPrefix(m.current, "@") {
		title = "direct: " + m.current[1:]
	} else if v := m.views[m.current]; v != nil {
		title += fmt.Sprintf(" · %d members, %d online", v.members, v.online)
	}
	header := m.st.header.Render("watchroom") + " " + m.st.dim.Render(m.me.User+" ("+m.me.Role+")") + "  " + title

	// Sidebar: rooms, then conversations.
	var side []string
	side = append(side, m.st.dim.Render("rooms  members/online"))
	for _, n := range m.viewNames() {
		v := m.views[n]
		label := n
		if v.kind != "" {
			label = "#" + n
			if !v.member {
				label = " " + n
			}
		}
		counts := ""
		if v.kind != "" {
			counts = fmt.Sprintf("%d/%d", v.members, v.online)
		}
		mark := " "
		if v.unread > 0 {
			mark = "*"
		}
		room := truncateTo(label, sw-len(counts)-2)
		txt := mark + room + strings.Repeat(" ", max(1, sw-1-len([]rune(room))-len(counts))) + counts
		switch {
		case n == m.current:
			side = append(side, m.st.selected.Render(txt))
		case v.unread > 0:
			side = append(side, m.st.unread.Render(txt))
		default:
			side = append(side, txt)
		}
	}

	// Messages, scrolled back by m.scroll lines.
	lines := m.wrapped()
	scroll := min(m.scroll, max(0, len(lines)-h))
	end := len(lines) - scroll
	start := max(0, end-h)
	shown := lines[start:end]
	if start == 0 && len(shown) < h && m.cur().atStart && len(m.cur().lines) > 0 {
		shown = append([]string{m.st.dim.Render("— start of " + m.current + " —")}, shown...)
	}
	for len(shown) < h {
		shown = append([]string{""}, shown...)
	}
	if len(shown) > h {
		shown = shown[len(shown)-h:]
	}
	if scroll > 0 {
		shown[h-1] = m.st.dim.Render(fmt.Sprintf("↓ %d newer lines · PgDn", scroll))
		if start > 0 {
			shown[0] = m.st.dim.Render(fmt.Sprintf("↑ %d older lines · PgUp", start))
		}
	}

	var body strings.Builder
	for i := 0; i < h; i++ {
		s := ""
		if i < len(side) {
			s = side[i]
		}
		body.WriteString(padTo(s, sw) + m.st.sep.Render("│") + shown[i] + "\n")
	}

	// Alerts pane.
	alerts := m.liveAlerts()
	open := 0
	for _, a := range alerts {
		if a.State != "resolved" {
			open++
		}
	}
	body.WriteString(m.st.sep.Render(fmt.Sprintf("── alerts: %d live ", open)+strings.Repeat("─", max(0, m.width-20))) + "\n")
	rows := m.alertRows()
	for i := 0; i < rows; i++ {
		if i < len(alerts) {
			body.WriteString(m.alertStyle(alerts[i]).Render(truncateTo(alertText(alerts[i]), m.width)) + "\n")
		} else if i == 0 {
			body.WriteString(m.st.dim.Render("no live alerts") + "\n")
		} else {
			body.WriteString("\n")
		}
	}

	// Typing line, input, status.
	typing := ""
	if t := m.typers(); len(t) > 0 {
		typing = m.st.dim.Render(strings.Join(t, ", ") + " typing…")
	}
	body.WriteString(typing + "\n")
	body.WriteString(m.input.View() + "\n")
	return header + "\n" + body.String() + m.statusLine()
}

func (m *Model) statusLine() string {
	switch m.state {
	case StateOnline:
		return m.st.online.Render("● online") + m.st.dim.Render(" · "+m.me.User+" · /help for commands")
	case StateWaiting:
		why := ""
		if m.stateErr != "" {
			why = " (" + truncateTo(m.stateErr, 40) + ")"
		}
		return m.st.offline.Render(fmt.Sprintf("○ disconnected%s; reconnecting in %s", why, m.retry))
	case StateEnded:
		return m.st.err.Render("○ signed out")
	}
	return m.st.offline.Render("○ connecting…")
}

func truncateTo(s string, n int) string {
	r := []rune(s)
	if n <= 0 {
		return ""
	}
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// padTo pads a possibly styled string to n cells.
func padTo(s string, n int) string {
	w := lipgloss.Width(s)
	if w >= n {
		return s
	}
	return s + strings.Repeat(" ", n-w)
}
