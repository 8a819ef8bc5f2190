package selector

import "github.com/opentrail/opentrail/internal/event"

// EventOf is what selectors look at in an event, from its metadata.
func EventOf(m *event.Meta) *Event {
	ev := &Event{
		Category: m.Category, Source: m.Source, Name: m.Name, Type: m.Type, ReadOnly: m.ReadOnly > 0,
		ManagementEvent: m.ManagementEvent, UserARN: m.UserARN, ErrorCode: m.ErrorCode,
		VPCEndpointID: m.VPCEndpointID, SessionCredentialFromConsole: m.ConsoleSession,
	}
	for _, r := range m.Resources {
		ev.Resources = append(ev.Resources, Resource{Type: r.Type, ARN: r.ARN})
	}
	return ev
}
