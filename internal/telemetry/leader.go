package telemetry

import "go.opentelemetry.io/otel/attribute"

// Names of package leader's telemetry.
const (
	// SpanCampaign prefixes the span of one campaign: "campaign <service>".
	SpanCampaign = "campaign"
	// MetricLeaderIsLeader is an up-down counter ({leader}) that is 1 while
	// the unit leads its election and 0 otherwise, with AttrService and
	// AttrUnit.
	MetricLeaderIsLeader = "coreservice.leader.is_leader"
	// AttrUnit names what campaigns ("task report") on the campaign span
	// and MetricLeaderIsLeader.
	AttrUnit = attribute.Key("coreservice.unit")
	// AttrToken is the fencing token of the term won, on the campaign span.
	AttrToken = attribute.Key("coreservice.leader.token")
)
