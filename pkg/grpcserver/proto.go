package grpcserver

import "google.golang.org/protobuf/protoadapt"

func toProto(in []any) []protoadapt.MessageV1 {
	out := make([]protoadapt.MessageV1, 0, len(in))
	for _, m := range in {
		out = append(out, protoadapt.MessageV1Of(m.(protoadapt.MessageV2)))
	}
	return out
}
