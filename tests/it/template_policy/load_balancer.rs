//! The load balancer and its listeners.

use super::*;

// ------------------------------------------------------------------ load balancer

#[test]
fn listeners_are_80_and_9090_attached_to_blue_and_green() {
    let t = template();
    let blue = blue_target_group(&t);
    let green = green_target_group(&t);
    let prod = listener_forwarding_to(&t, &blue);
    let test = listener_forwarding_to(&t, &green);
    assert_eq!(
        prod.prop("Port"),
        Some(&json!({"Fn::If": ["HasCertificate", 443, 80]}))
    );
    assert_eq!(test.prop("Port"), Some(&json!(9090)));
    // :9090 is HTTPS with the same certificate and policy whenever production is.
    assert_eq!(
        test.prop("Protocol"),
        Some(&json!({"Fn::If": ["HasCertificate", "HTTPS", "HTTP"]}))
    );
    assert_eq!(test.prop("SslPolicy"), prod.prop("SslPolicy"));
    assert_eq!(test.prop("Certificates"), prod.prop("Certificates"));
    // With a certificate :80 still exists, as a redirect.
    let redirect = t
        .resources_of_type("AWS::ElasticLoadBalancingV2::Listener")
        .find(|l| l.prop("DefaultActions.0.Type") == Some(&json!("redirect")))
        .expect("HTTP->HTTPS redirect listener");
    assert_eq!(redirect.condition(), Some("HasCertificate"));
    assert_eq!(redirect.prop("Port"), Some(&json!(80)));
    assert_eq!(
        prod.prop("SslPolicy").unwrap()["Fn::If"][1],
        "ELBSecurityPolicy-TLS13-1-2-2021-06"
    );
}

#[test]
fn test_listener_is_reachable_only_from_the_allowed_cidr_and_the_validator() {
    let t = template();
    let lb = only(&t, "AWS::ElasticLoadBalancingV2::LoadBalancer");
    let sg_id = lb.prop("SecurityGroups.0").unwrap()["Ref"]
        .as_str()
        .unwrap();
    let sg = t.resource(sg_id).unwrap();
    let mut sources = Vec::new();
    // A port may be conditional (`Fn::If`): the rule covers 9090 if any branch does.
    fn ports(v: &Value) -> Vec<u64> {
        match v {
            Value::Number(n) => vec![n.as_u64().unwrap()],
            Value::Object(m) if m.contains_key("Fn::If") => {
                let b = &m["Fn::If"];
                [ports(&b[1]), ports(&b[2])].concat()
            }
            other => panic!("port {other} cannot be checked"),
        }
    }
    let covers_9090 = |r: &Value| {
        r["IpProtocol"] == "-1"
            || ports(&r["FromPort"])
                .iter()
                .zip(ports(&r["ToPort"]))
                .any(|(from, to)| *from <= 9090 && 9090 <= to)
    };
    for r in sg.prop("SecurityGroupIngress").unwrap().as_array().unwrap() {
        if covers_9090(r) {
            sources.push((
                None,
                r["CidrIp"].clone(),
                r["SourceSecurityGroupId"].clone(),
            ));
        }
    }
    for r in t.resources_of_type("AWS::EC2::SecurityGroupIngress") {
        if r.prop("GroupId") == Some(&r#ref(sg_id)) && covers_9090(r.properties()) {
            sources.push((
                r.condition(),
                r.properties()["CidrIp"].clone(),
                r.properties()["SourceSecurityGroupId"].clone(),
            ));
        }
    }
    assert_eq!(
        sources,
        vec![
            (
                Some("HasOperatorTestCidr"),
                r#ref("TestListenerAllowedCidr"),
                Value::Null
            ),
            (None, Value::Null, r#ref("ValidatorSecurityGroup")),
            (
                Some("AllowValidatorCidr"),
                r#ref("ValidatorSourceCidr"),
                Value::Null
            ),
        ]
    );
    // The NAT path exists only for an internet-facing ALB, which a rule makes name it.
    let rules = t.section("Rules").as_object().unwrap();
    let rule = rules
        .values()
        .find(|r| {
            r["RuleCondition"]
                == json!({"Fn::Equals": [{"Ref": "LoadBalancerScheme"}, "internet-facing"]})
        })
        .expect("internet-facing rule");
    assert!(rule["Assertions"]
        .to_string()
        .contains("ValidatorSourceCidr"));
    // ... and a certificate: no plain-HTTP order entry from the internet.
    assert!(rule["Assertions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["Assert"]
            == json!({"Fn::Not": [{"Fn::Equals": [{"Ref": "CertificateArn"}, ""]}]})));
    assert_eq!(param(&t, "LoadBalancerScheme")["Default"], "internal");
    // No operator CIDR unless one is given.
    assert_eq!(param(&t, "TestListenerAllowedCidr")["Default"], "");
}

#[test]
fn load_balancer_drops_invalid_headers_and_logs_to_an_sse_s3_bucket_it_waits_for() {
    let t = template();
    let lb = only(&t, "AWS::ElasticLoadBalancingV2::LoadBalancer");
    let attrs = lb
        .prop("LoadBalancerAttributes")
        .unwrap()
        .as_array()
        .unwrap();
    let attr = |k: &str| {
        attrs
            .iter()
            .find(|a| a["Key"] == k)
            .map(|a| a["Value"].clone())
            .unwrap_or_else(|| panic!("attribute {k}"))
    };
    assert_eq!(
        attr("routing.http.drop_invalid_header_fields.enabled"),
        "true"
    );
    assert_eq!(
        attr("deletion_protection.enabled"),
        r#ref("LoadBalancerDeletionProtection")
    );
    assert_eq!(attr("access_logs.s3.enabled"), "true");
    let bucket_id = attr("access_logs.s3.bucket")["Ref"]
        .as_str()
        .unwrap()
        .to_string();
    let bucket = t.resource(&bucket_id).unwrap();
    assert_eq!(
        bucket.prop("BucketEncryption.ServerSideEncryptionConfiguration.0.ServerSideEncryptionByDefault.SSEAlgorithm"),
        Some(&json!("AES256")),
        "ALB log delivery supports SSE-S3 only"
    );
    let policy = t
        .resources_of_type("AWS::S3::BucketPolicy")
        .find(|p| p.prop("Bucket") == Some(&r#ref(&bucket_id)))
        .expect("log-delivery bucket policy");
    assert!(lb.depends_on().contains(&policy.id));
    let put = &policy.prop("PolicyDocument.Statement.0").unwrap();
    assert_eq!(put["Action"], "s3:PutObject");
    assert!(put["Principal"].to_string().contains("ElbLogDelivery"));
    assert_eq!(
        t.section("Mappings")["ElbLogDelivery"]["us-east-2"]["Account"],
        "033677994240"
    );
}

#[test]
fn an_optional_waf_web_acl_is_associated_with_the_alb() {
    let t = template();
    let assoc = only(&t, "AWS::WAFv2::WebACLAssociation");
    assert_eq!(assoc.condition(), Some("HasWebAcl"));
    let lb = only(&t, "AWS::ElasticLoadBalancingV2::LoadBalancer");
    assert_eq!(assoc.prop("ResourceArn"), Some(&r#ref(lb.id)));
    assert_eq!(assoc.prop("WebACLArn"), Some(&r#ref("WebAclArn")));
    assert_eq!(param(&t, "WebAclArn")["Default"], "");
    // The README warns that WAF rate rules must not throttle the gates' orders.
    let desc = param(&t, "WebAclArn")["Description"].as_str().unwrap();
    assert!(desc.contains("synthetic orders"), "{desc}");
}

#[test]
fn the_template_never_sets_the_alb_reservation_the_warm_up_owns_it() {
    let text = std::fs::read_to_string(crate::support::root().join("template.yaml")).unwrap();
    let t = template();
    let lb = only(&t, "AWS::ElasticLoadBalancingV2::LoadBalancer");
    assert!(lb.prop("MinimumLoadBalancerCapacity").is_none());
    assert!(
        !text.contains("MinimumLoadBalancerCapacity:"),
        "a stack update would fight the warm-up"
    );
    // The function may modify only this load balancer's reservation, and only when enabled.
    let f = t
        .resources_of_type("AWS::Serverless::Function")
        .find(|f| f.prop("Handler") == Some(&serde_json::json!("market-warmup")))
        .unwrap();
    let sts = function_statements(&f);
    let modify: Vec<&Value> = sts
        .iter()
        .filter(|s| s["Action"] == "elasticloadbalancing:ModifyCapacityReservation")
        .collect();
    assert_eq!(modify.len(), 1);
    assert_eq!(modify[0]["Resource"], r#ref("LoadBalancer"));
    let env = f.prop("Environment.Variables").unwrap();
    assert_eq!(
        env["ALB_RESERVATION_ENABLED"],
        r#ref("AlbReservationEnabled")
    );
    assert_eq!(env["LOAD_BALANCER_ARN"], r#ref("LoadBalancer"));
    assert_eq!(
        param(&t, "AlbReservationEnabled")["Default"],
        "false",
        "off by default"
    );
    for alarm in ["AlbReservationDeadlineAlarm", "AlbReservationNotReadyAlarm"] {
        let a = t.resource(alarm).unwrap();
        assert_eq!(a.condition(), Some("ReserveAlb"), "{alarm}");
        assert_eq!(
            a.prop("AlarmActions"),
            Some(&serde_json::json!([r#ref("AlarmTopic")]))
        );
    }
}
