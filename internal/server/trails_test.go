package server_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
)

// TestTrailOperationsSDK drives every trail operation through aws-sdk-go-v2,
// so that request serialisation, response shapes and error codes are checked
// on the wire, as a real client sees them.
func TestTrailOperationsSDK(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	east, west := e.ct(root, "us-east-1"), e.ct(root, "us-west-2")
	mustCode := func(want string, err error) {
		t.Helper()
		if got := apiCode(err); got != want {
			t.Fatalf("got %q (%v), want %s", got, err, want)
		}
	}

	_, err := east.CreateTrail(ctx, &cloudtrail.CreateTrailInput{Name: aws.String("no-bucket"), S3BucketName: aws.String("missing-bucket")})
	mustCode("S3BucketDoesNotExistException", err)
	e.buckets("audit-logs", "west-logs", "audit-bucket")

	// Create: a multi-region trail in us-east-1 and a single-region one in us-west-2.
	org, err := east.CreateTrail(ctx, &cloudtrail.CreateTrailInput{Name: aws.String("org-trail"), S3BucketName: aws.String("audit-logs"),
		S3KeyPrefix: aws.String("ct"), IsMultiRegionTrail: aws.Bool(true), EnableLogFileValidation: aws.Bool(true),
		TagsList: []types.Tag{{Key: aws.String("team"), Value: aws.String("sec")}}})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(org.TrailARN) != "arn:aws:cloudtrail:us-east-1:123456789012:trail/org-trail" || !aws.ToBool(org.IsMultiRegionTrail) ||
		!aws.ToBool(org.LogFileValidationEnabled) || !aws.ToBool(org.IncludeGlobalServiceEvents) {
		t.Fatalf("CreateTrail: %+v", org)
	}
	if _, err := west.CreateTrail(ctx, &cloudtrail.CreateTrailInput{Name: aws.String("west-only"), S3BucketName: aws.String("west-logs")}); err != nil {
		t.Fatal(err)
	}
	_, err = east.CreateTrail(ctx, &cloudtrail.CreateTrailInput{Name: aws.String("org-trail"), S3BucketName: aws.String("audit-bucket")})
	mustCode("TrailAlreadyExistsException", err)
	for _, bad := range []string{"ab", "-starts-with-dash", "has space", "my--trail", "a._b", "192.168.5.4"} {
		_, err = east.CreateTrail(ctx, &cloudtrail.CreateTrailInput{Name: aws.String(bad), S3BucketName: aws.String("audit-bucket")})
		mustCode("InvalidTrailNameException", err)
	}
	_, err = east.CreateTrail(ctx, &cloudtrail.CreateTrailInput{Name: aws.String("bad-bucket"), S3BucketName: aws.String("Bad_Bucket!")})
	mustCode("InvalidS3BucketNameException", err)

	// A multi-region trail shows in other regions as a shadow trail; a single-region one does not.
	dt, err := west.DescribeTrails(ctx, &cloudtrail.DescribeTrailsInput{})
	if err != nil || len(dt.TrailList) != 2 {
		t.Fatalf("DescribeTrails west: %v %d", err, len(dt.TrailList))
	}
	dt, err = west.DescribeTrails(ctx, &cloudtrail.DescribeTrailsInput{IncludeShadowTrails: aws.Bool(false)})
	if err != nil || len(dt.TrailList) != 1 || aws.ToString(dt.TrailList[0].Name) != "west-only" {
		t.Fatalf("DescribeTrails without shadows: %v %+v", err, dt.TrailList)
	}
	got, err := west.GetTrail(ctx, &cloudtrail.GetTrailInput{Name: org.TrailARN})
	if err != nil || aws.ToString(got.Trail.HomeRegion) != "us-east-1" {
		t.Fatalf("GetTrail shadow by ARN: %v", err)
	}
	_, err = east.GetTrail(ctx, &cloudtrail.GetTrailInput{Name: aws.String("west-only")})
	mustCode("TrailNotFoundException", err)

	// Writes only in the home region.
	_, err = west.StartLogging(ctx, &cloudtrail.StartLoggingInput{Name: org.TrailARN})
	mustCode("InvalidHomeRegionException", err)
	_, err = west.DeleteTrail(ctx, &cloudtrail.DeleteTrailInput{Name: org.TrailARN})
	mustCode("InvalidHomeRegionException", err)

	// ListTrails pages through trails of all regions.
	for i := range 3 {
		if _, err := east.CreateTrail(ctx, &cloudtrail.CreateTrailInput{Name: aws.String(fmt.Sprintf("extra-%d", i)), S3BucketName: aws.String("audit-bucket")}); err != nil {
			t.Fatal(err)
		}
	}
	var listed []string
	lp := cloudtrail.NewListTrailsPaginator(east, &cloudtrail.ListTrailsInput{})
	for lp.HasMorePages() {
		page, err := lp.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, tr := range page.Trails {
			listed = append(listed, aws.ToString(tr.Name)+"@"+aws.ToString(tr.HomeRegion))
		}
	}
	if len(listed) != 5 {
		t.Fatalf("ListTrails: %v", listed)
	}

	// Logging state and status.
	if _, err := east.StartLogging(ctx, &cloudtrail.StartLoggingInput{Name: aws.String("org-trail")}); err != nil {
		t.Fatal(err)
	}
	st, err := east.GetTrailStatus(ctx, &cloudtrail.GetTrailStatusInput{Name: aws.String("org-trail")})
	if err != nil || !aws.ToBool(st.IsLogging) || st.StartLoggingTime == nil {
		t.Fatalf("GetTrailStatus: %v %+v", err, st)
	}
	if _, err := east.StopLogging(ctx, &cloudtrail.StopLoggingInput{Name: aws.String("org-trail")}); err != nil {
		t.Fatal(err)
	}
	st, _ = east.GetTrailStatus(ctx, &cloudtrail.GetTrailStatusInput{Name: aws.String("org-trail")})
	if aws.ToBool(st.IsLogging) || st.StopLoggingTime == nil {
		t.Fatalf("after StopLogging: %+v", st)
	}

	// UpdateTrail.
	up, err := east.UpdateTrail(ctx, &cloudtrail.UpdateTrailInput{Name: aws.String("extra-0"), S3KeyPrefix: aws.String("new-prefix")})
	if err != nil || aws.ToString(up.S3KeyPrefix) != "new-prefix" {
		t.Fatalf("UpdateTrail: %v", err)
	}

	// Event selectors: default, basic, advanced (one replaces the other), invalid.
	sel, err := east.GetEventSelectors(ctx, &cloudtrail.GetEventSelectorsInput{TrailName: aws.String("extra-1")})
	if err != nil || len(sel.EventSelectors) != 1 || sel.EventSelectors[0].ReadWriteType != types.ReadWriteTypeAll ||
		!aws.ToBool(sel.EventSelectors[0].IncludeManagementEvents) || sel.EventSelectors[0].DataResources == nil {
		t.Fatalf("default selectors: %v %+v", err, sel)
	}
	_, err = east.PutEventSelectors(ctx, &cloudtrail.PutEventSelectorsInput{TrailName: aws.String("extra-1"), EventSelectors: []types.EventSelector{{
		ReadWriteType: types.ReadWriteTypeWriteOnly, IncludeManagementEvents: aws.Bool(true),
		DataResources: []types.DataResource{{Type: aws.String("AWS::Lambda::Function"), Values: []string{"arn:aws:lambda"}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = east.PutEventSelectors(ctx, &cloudtrail.PutEventSelectorsInput{TrailName: aws.String("extra-1"), AdvancedEventSelectors: []types.AdvancedEventSelector{{
		Name: aws.String("VPC endpoint access denied"),
		FieldSelectors: []types.AdvancedFieldSelector{
			{Field: aws.String("eventCategory"), Equals: []string{"NetworkActivity"}},
			{Field: aws.String("eventSource"), Equals: []string{"kms.amazonaws.com"}},
			{Field: aws.String("errorCode"), Equals: []string{"VpceAccessDenied"}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	sel, _ = east.GetEventSelectors(ctx, &cloudtrail.GetEventSelectorsInput{TrailName: aws.String("extra-1")})
	if len(sel.AdvancedEventSelectors) != 1 || len(sel.EventSelectors) != 0 {
		t.Fatalf("advanced did not replace basic: %+v", sel)
	}
	_, err = east.PutEventSelectors(ctx, &cloudtrail.PutEventSelectorsInput{TrailName: aws.String("extra-1"), AdvancedEventSelectors: []types.AdvancedEventSelector{{
		FieldSelectors: []types.AdvancedFieldSelector{{Field: aws.String("eventCategory"), Equals: []string{"Data"}}}}}})
	mustCode("InvalidEventSelectorsException", err) // Data needs resources.type

	// Insight selectors.
	_, err = east.GetInsightSelectors(ctx, &cloudtrail.GetInsightSelectorsInput{TrailName: aws.String("extra-2")})
	mustCode("InsightNotEnabledException", err)
	if _, err := east.PutInsightSelectors(ctx, &cloudtrail.PutInsightSelectorsInput{TrailName: aws.String("extra-2"),
		InsightSelectors: []types.InsightSelector{{InsightType: types.InsightTypeApiCallRateInsight}}}); err != nil {
		t.Fatal(err)
	}
	ins, err := east.GetInsightSelectors(ctx, &cloudtrail.GetInsightSelectorsInput{TrailName: aws.String("extra-2")})
	if err != nil || len(ins.InsightSelectors) != 1 {
		t.Fatalf("GetInsightSelectors: %v", err)
	}

	// Tags.
	if _, err := east.AddTags(ctx, &cloudtrail.AddTagsInput{ResourceId: org.TrailARN, TagsList: []types.Tag{{Key: aws.String("env"), Value: aws.String("prod")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := east.RemoveTags(ctx, &cloudtrail.RemoveTagsInput{ResourceId: org.TrailARN, TagsList: []types.Tag{{Key: aws.String("team")}}}); err != nil {
		t.Fatal(err)
	}
	tags, err := east.ListTags(ctx, &cloudtrail.ListTagsInput{ResourceIdList: []string{aws.ToString(org.TrailARN)}})
	if err != nil || len(tags.ResourceTagList) != 1 || len(tags.ResourceTagList[0].TagsList) != 1 || aws.ToString(tags.ResourceTagList[0].TagsList[0].Key) != "env" {
		t.Fatalf("ListTags: %v %+v", err, tags)
	}

	// Delete, then it is gone everywhere.
	if _, err := east.DeleteTrail(ctx, &cloudtrail.DeleteTrailInput{Name: org.TrailARN}); err != nil {
		t.Fatal(err)
	}
	_, err = west.GetTrail(ctx, &cloudtrail.GetTrailInput{Name: org.TrailARN})
	mustCode("TrailNotFoundException", err)

	// Operations of the model that are not built answer honestly.
	_, err = east.ListDashboards(ctx, &cloudtrail.ListDashboardsInput{})
	mustCode("UnsupportedOperationException", err)
}
