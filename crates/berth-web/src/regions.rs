//! The AWS regions offered by the Region select. A stored region that is not listed (a new one)
//! is offered too, so editing never silently changes it.

/// AWS commercial, China and GovCloud regions with ECR, by code.
pub const AWS_REGIONS: &[&str] = &[
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "af-south-1",
    "ap-east-1",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ca-central-1",
    "ca-west-1",
    "eu-central-1",
    "eu-central-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-south-1",
    "eu-south-2",
    "eu-north-1",
    "il-central-1",
    "me-south-1",
    "me-central-1",
    "sa-east-1",
    "cn-north-1",
    "cn-northwest-1",
    "us-gov-east-1",
    "us-gov-west-1",
];

/// The options of the select: every listed region, plus `current` when it is not listed.
pub fn options(current: &str) -> Vec<String> {
    let mut all: Vec<String> = AWS_REGIONS.iter().map(|r| (*r).to_owned()).collect();
    if !current.is_empty() && !AWS_REGIONS.contains(&current) {
        all.insert(0, current.to_owned());
    }
    all
}
