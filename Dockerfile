# The Jenkins build agent: everything the pipeline and its tests need. Tool versions are not
# listed here: the image runs scripts/install.sh, the same script CI runs (.ci/run), so the two
# cannot drift apart.
FROM rust:1-bookworm

RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      openjdk-17-jre-headless python3 python3-pip git curl \
 && rm -rf /var/lib/apt/lists/* \
 && rustup component add rustfmt clippy \
 && useradd --create-home --shell /bin/bash jenkins

# The one install script (apt packages, rustup target, trunk, wasm-bindgen-cli pinned to
# Cargo.lock, wasm-opt); it reads its versions from the files copied here.
COPY scripts/install.sh /opt/searchbar/scripts/install.sh
COPY Cargo.lock /opt/searchbar/Cargo.lock
RUN bash /opt/searchbar/scripts/install.sh && chmod -R a+rwX /usr/local/cargo

USER jenkins
ENV CARGO_TARGET_DIR=/home/jenkins/.cache/searchbar/target \
    SEARCHBAR_CACHE=/home/jenkins/.cache/searchbar
WORKDIR /home/jenkins/agent
# Inbound agent: the controller serves agent.jar itself.
CMD curl -fsSo /home/jenkins/agent.jar "$JENKINS_URL/jnlpJars/agent.jar" \
 && exec java -jar /home/jenkins/agent.jar -url "$JENKINS_URL" -name "$JENKINS_AGENT_NAME" \
      -secret "$JENKINS_SECRET" -webSocket -workDir /home/jenkins/agent
