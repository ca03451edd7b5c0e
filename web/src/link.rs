//! The page's message loop. The app is a state machine over [`Msg`]s ([`App::update`]); a
//! [`Link`] delivers them. A message sent while another is being handled (from `update`
//! itself, or from an event the handling set off) waits its turn, so `update` never runs
//! inside itself, and the status line and footer are drawn after each message that changed
//! them ([`App::render`]). The rows are drawn by [`crate::results::Rows`], as searches end.
//!
//! A framework (Yew) did this before: this is the part of it the page used, without the virtual
//! DOM it carried into the first module's download (about a tenth of its code).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use web_sys::Element;

use crate::app::{App, Msg};

/// A function of an event, made by [`Link::callback`].
pub type Callback<E> = Rc<dyn Fn(E)>;

/// Sends messages to the page's [`App`]; cheap to clone.
#[derive(Clone)]
pub struct Link(Rc<Shared>);

struct Shared {
    app: RefCell<Option<App>>,
    queue: RefCell<VecDeque<Msg>>,
    busy: Cell<bool>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("queued", &self.0.queue.borrow().len())
            .finish()
    }
}

impl Link {
    /// Starts the app in `root`: it draws itself there, then handles what was queued while it
    /// was created.
    pub fn mount(root: Element) {
        let link = Link(Rc::new(Shared {
            app: RefCell::new(None),
            queue: RefCell::new(VecDeque::new()),
            busy: Cell::new(true),
        }));
        let app = App::create(&link, root);
        app.render();
        app.mounted(&link);
        *link.0.app.borrow_mut() = Some(app);
        link.run();
    }

    /// Queues `msg`; handles it now unless a message is being handled.
    pub fn send_message(&self, msg: Msg) {
        self.0.queue.borrow_mut().push_back(msg);
        if !self.0.busy.replace(true) {
            self.run();
        }
    }

    /// Handles queued messages until none is left.
    fn run(&self) {
        loop {
            let next = self.0.queue.borrow_mut().pop_front();
            let Some(msg) = next else { break };
            let mut app = self.0.app.borrow_mut();
            if let Some(app) = app.as_mut() {
                if app.update(self, msg) {
                    app.render();
                }
            }
        }
        self.0.busy.set(false);
    }

    /// A function that sends the message `f` makes of its event.
    pub fn callback<E: 'static>(&self, f: impl Fn(E) -> Msg + 'static) -> Callback<E> {
        let link = self.clone();
        Rc::new(move |e| link.send_message(f(e)))
    }

    /// A function that sends the message `f` makes of its event, if any.
    pub fn batch_callback<E: 'static>(
        &self,
        f: impl Fn(E) -> Option<Msg> + 'static,
    ) -> Callback<E> {
        let link = self.clone();
        Rc::new(move |e| {
            if let Some(msg) = f(e) {
                link.send_message(msg);
            }
        })
    }
}
